from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "ccphost.accounts"
    label = "accounts"
