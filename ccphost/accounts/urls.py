from django.urls import path

from ccphost.accounts import views

app_name = "accounts"

urlpatterns = [
    path("<slug:alias>/login/", views.saml_login, name="saml_login"),
    path("<slug:alias>/acs/", views.saml_acs, name="saml_acs"),
    path("<slug:alias>/metadata/", views.saml_metadata, name="saml_metadata"),
    path("<slug:alias>/sls/", views.saml_sls, name="saml_sls"),
    path("<slug:alias>/logout/", views.instance_logout, name="logout"),
]
