"""What the CCP and agent pages need to know about an instance, as JSON-safe dicts."""

from typing import Any
from urllib.parse import urlsplit

from django.http import HttpRequest
from django.urls import reverse

from ccphost.accounts.saml import sso_login_path
from ccphost.instances.models import Instance


def ccp_url(request: HttpRequest, instance: Instance) -> str:
    if instance.kind == Instance.Kind.AMAZON_CONNECT:
        return instance.ccp_url
    return request.build_absolute_uri(reverse("ccp:ccp", args=[instance.alias]))


def login_url(request: HttpRequest, instance: Instance) -> str:
    if instance.login_url:
        return instance.login_url
    if instance.kind == Instance.Kind.AMAZON_CONNECT:
        return ""  # The host library then opens the CCP URL itself, as Streams does.
    sso = sso_login_path(instance)
    if sso:
        return request.build_absolute_uri(sso)
    return request.build_absolute_uri(reverse("ccp:login", args=[instance.alias]))


def ringtone_url(request: HttpRequest, instance: Instance) -> str:
    if instance.ringtone_file:
        return request.build_absolute_uri(instance.ringtone_file.url)
    return instance.ringtone_url


def init_ccp_options(request: HttpRequest, instance: Instance) -> dict[str, Any]:
    """The options the agent page passes to ``connect.core.initCCP``."""
    softphone: dict[str, Any] = {
        "allowFramedSoftphone": instance.allow_framed_softphone,
        "disableRingtone": instance.disable_ringtone,
    }
    ringtone = ringtone_url(request, instance)
    if ringtone:
        softphone["ringtoneUrl"] = ringtone
    options: dict[str, Any] = {
        "ccpUrl": ccp_url(request, instance),
        "loginPopup": instance.login_popup,
        "loginPopupAutoClose": instance.login_popup_auto_close,
        "softphone": softphone,
        "width": instance.ccp_width,
        "height": instance.ccp_height,
    }
    url = login_url(request, instance)
    if url:
        options["loginUrl"] = url
    return options


def url_origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
