from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import include, path

from ccphost.instances.models import Instance


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html", {"instances": Instance.objects.all()})


urlpatterns = [
    path("", home, name="home"),
    path("admin/", admin.site.urls),
    path("connect/", include("ccphost.ccp.urls")),
    path("api/v1/", include("ccphost.engine.urls")),
    path("saml2/", include("ccphost.accounts.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
]
