"""The CCP page, the agent page that embeds it, and the instance's sign-in page."""

from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, render
from django.templatetags.static import static
from django.urls import reverse
from django.views.decorators.clickjacking import xframe_options_exempt

from ccphost.accounts.redirects import safe_redirect_target
from ccphost.accounts.saml import sso_login_path
from ccphost.ccp.event_stream import SUPERVISE_PERMISSION, TOKEN_MAX_AGE_SECONDS, make_events_token
from ccphost.ccp.pages import init_ccp_options, ringtone_url, url_origin
from ccphost.engine.models import Agent
from ccphost.instances.models import Instance
from ccphost.instances.services import approved_origins


@xframe_options_exempt
def ccp_page(request: HttpRequest, alias: str) -> HttpResponse:
    """The softphone. Only the instance's approved origins (and ccphost) may frame it."""
    instance = get_object_or_404(Instance, alias=alias)
    origins = sorted(approved_origins(alias))
    config: dict[str, Any] = {
        "alias": alias,
        "instanceName": instance.name,
        "socketPath": f"/ws/ccp/{alias}/",
        "approvedOrigins": origins,
        "signedIn": request.user.is_authenticated,
        "username": request.user.get_username() if request.user.is_authenticated else "",
        "logoutUrl": reverse("accounts:logout", args=[alias]),
        "eventsTokenUrl": reverse("ccp:events_token", args=[alias]),
        "csrfToken": get_token(request),
        "defaultRingtoneUrl": static("ccphost/sounds/ring.wav"),
        "loginUrl": reverse("ccp:login", args=[alias]),
        "ringtoneUrl": ringtone_url(request, instance),
        "disableRingtone": instance.disable_ringtone,
        "compact": instance.is_compact,
    }
    response = render(request, "ccp/ccp.html", {"instance": instance, "ccp_config": config})
    media = ["'self'", *origins]
    ringtone_origin = url_origin(config["ringtoneUrl"])
    if ringtone_origin and ringtone_origin not in media:
        media.append(ringtone_origin)
    response._csp_replace = {"frame-ancestors": ["'self'", *origins], "media-src": media}  # type: ignore[attr-defined]
    return response


def agent_page(request: HttpRequest, alias: str) -> HttpResponse:
    """ccphost's own page that embeds the instance's CCP through connect-streams.js."""
    instance = get_object_or_404(Instance, alias=alias)
    options = init_ccp_options(request, instance)
    amazon = instance.kind == Instance.Kind.AMAZON_CONNECT
    # Amazon's CCP: the page forwards what Streams sees, so ccphost records and relays it.
    page_options = {"forwardEventsPath": f"/ws/events/{alias}/?after=latest" if amazon else None}
    context = {"instance": instance, "init_options": options, "page_options": page_options}
    response = render(request, "agent/agent.html", context)
    ccp_origin = url_origin(options["ccpUrl"])
    frame_src = ["'self'"]
    if ccp_origin and instance.kind == Instance.Kind.AMAZON_CONNECT:
        frame_src.append(ccp_origin)
    response._csp_replace = {"frame-src": frame_src}  # type: ignore[attr-defined]
    return response


def events_token(request: HttpRequest, alias: str) -> JsonResponse:
    """A short-lived token for ``/ws/events/<alias>/``, which the CCP hands to its parent page."""
    user = request.user
    agent = Agent.objects.filter(instance__alias=alias, user_id=user.pk).first() if user.is_authenticated else None
    if agent is None:
        return JsonResponse({"error": "Sign in as an agent of this instance first."}, status=403)
    return JsonResponse(
        {"token": make_events_token(agent), "expiresIn": TOKEN_MAX_AGE_SECONDS, "path": f"/ws/events/{alias}/"}
    )


@permission_required(SUPERVISE_PERMISSION, raise_exception=True)
def supervisor_page(request: HttpRequest, alias: str) -> HttpResponse:
    """Live agents and queues of the instance, for staff allowed to supervise it."""
    instance = get_object_or_404(Instance, alias=alias)
    config = {"socketPath": f"/ws/supervisor/{alias}/"}
    return render(request, "ccp/supervisor.html", {"instance": instance, "config": config})


class InstanceLoginView(auth_views.LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = False

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["instance"] = self.instance
        context["sso_login_url"] = sso_login_path(self.instance)
        return context

    def get_redirect_url(self) -> str:
        # `next` only to ccphost's own pages or the instance's approved origins.
        target = self.request.POST.get(self.redirect_field_name, self.request.GET.get(self.redirect_field_name))
        return safe_redirect_target(self.instance, target) or ""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        self.instance = get_object_or_404(Instance, alias=kwargs["alias"])
        return super().dispatch(request, *args, **kwargs)

    def get_default_redirect_url(self) -> str:
        return reverse("ccp:signed_in", args=[self.instance.alias])


def signed_in(request: HttpRequest, alias: str) -> HttpResponse:
    """Where the login popup lands: it closes itself when it was opened by the host."""
    instance = get_object_or_404(Instance, alias=alias)
    return render(
        request,
        "ccp/signed_in.html",
        {"instance": instance, "auto_close": instance.login_popup_auto_close, "debug": settings.DEBUG},
    )
