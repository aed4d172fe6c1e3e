from django.apps import AppConfig


class CcpConfig(AppConfig):
    name = "ccphost.ccp"
    label = "ccp"
