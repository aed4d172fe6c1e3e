"""SAML endpoints of each instance (login, assertion consumer, metadata, logout) and CCP sign-out."""

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth import login, logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse, QueryDict
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.metadata import entity_descriptor

from ccphost.accounts import errors
from ccphost.accounts.errors import SignInRefusal, refusal_for
from ccphost.accounts.models import IdentityProvider
from ccphost.accounts.redirects import safe_redirect_target
from ccphost.accounts.saml import (
    BINDING_COOKIE,
    remember_request,
    saml_client,
    sp_config,
    sso_login_path,
    verified_identity,
)
from ccphost.accounts.services import SignInRefused, agent_for_assertion
from ccphost.instances.models import Instance

logger = logging.getLogger(__name__)

SAML_BACKEND = "ccphost.accounts.backends.SamlAgentBackend"


def refused(request: HttpRequest, instance: Instance | None, refusal: SignInRefusal) -> HttpResponse:
    retry_url = (sso_login_path(instance) or reverse("ccp:login", args=[instance.alias])) if instance else None
    context = {"instance": instance, "refusal": refusal, "retry_url": retry_url}
    return render(request, "accounts/sign_in_refused.html", context, status=refusal.status)


def _enabled_idp(alias: str) -> IdentityProvider | None:
    return IdentityProvider.objects.select_related("instance").filter(instance__alias=alias, enabled=True).first()


def default_target(instance: Instance) -> str:
    return reverse("ccp:signed_in", args=[instance.alias])


@never_cache
@require_GET
def saml_login(request: HttpRequest, alias: str) -> HttpResponse:
    """Start SP-initiated sign-in: a signed AuthnRequest to the IdP, with the return target as RelayState."""
    instance = get_object_or_404(Instance, alias=alias)
    idp = _enabled_idp(alias)
    if idp is None:
        return refused(request, instance, errors.NO_IDENTITY_PROVIDER)
    target = request.GET.get("next") or default_target(instance)
    if safe_redirect_target(instance, target) is None:
        return refused(request, instance, errors.UNSAFE_REDIRECT)
    request_id, info = saml_client(idp).prepare_for_authenticate(
        entityid=idp.entity_id, relay_state=target, binding=BINDING_HTTP_REDIRECT
    )
    binding = remember_request(alias, request_id)
    response = HttpResponseRedirect(dict(info["headers"])["Location"])
    # The IdP's answer comes back as a cross-site POST: only a SameSite=None cookie (which
    # must be Secure) travels with it.
    secure = settings.SESSION_COOKIE_SECURE
    response.set_cookie(
        BINDING_COOKIE,
        binding,
        max_age=settings.SAML_REQUEST_LIFETIME,
        path=f"/saml2/{alias}/",
        secure=secure,
        httponly=True,
        samesite="None" if secure else "Lax",
    )
    return response


@csrf_exempt  # The identity provider posts here from its own site; the signed assertion is the proof.
@never_cache
@require_POST
def saml_acs(request: HttpRequest, alias: str) -> HttpResponse:
    """Verify the IdP's answer and sign the agent in; any doubt refuses with nothing changed."""
    instance = get_object_or_404(Instance, alias=alias)
    idp = _enabled_idp(alias)
    if idp is None:
        return refused(request, instance, errors.NO_IDENTITY_PROVIDER)
    target = safe_redirect_target(instance, request.POST.get("RelayState") or default_target(instance))
    if target is None:
        return refused(request, instance, errors.UNSAFE_REDIRECT)
    saml_response = request.POST.get("SAMLResponse", "")
    if not saml_response:
        return refused(request, instance, errors.MALFORMED)
    try:
        identity = verified_identity(
            idp, saml_response, request.COOKIES.get(BINDING_COOKIE), require_binding=settings.SESSION_COOKIE_SECURE
        )
    except Exception as exc:  # pysaml2 signals every kind of invalid response by raising
        refusal = refusal_for(exc)
        logger.warning("SAML sign-in to %s refused (%s): %s", alias, refusal.code, exc)
        return refused(request, instance, refusal)
    try:
        user = agent_for_assertion(idp, identity)
    except SignInRefused as exc:
        logger.warning("SAML sign-in to %s refused (%s) for %s", alias, exc.refusal.code, identity.name_id)
        return refused(request, instance, exc.refusal)
    login(request, user, backend=SAML_BACKEND)
    request.session["saml"] = {"alias": alias, "name_id": identity.name_id}
    return HttpResponseRedirect(target)


@require_GET
def saml_metadata(request: HttpRequest, alias: str) -> HttpResponse:
    """The SP metadata to register at the identity provider (available before one is configured)."""
    instance = get_object_or_404(Instance, alias=alias)
    config = sp_config(instance, IdentityProvider.objects.filter(instance=instance).first())
    return HttpResponse(str(entity_descriptor(config)), content_type="application/samlmetadata+xml")


def _verified_logout_request(idp: IdentityProvider, data: QueryDict, binding: str) -> Any:
    """The IdP's LogoutRequest, only when signed with a key from its metadata."""
    client = saml_client(idp)
    # pysaml2 checks a request's signature (XML, or the Redirect binding's query) only when the
    # configuration says requests must be signed, an IdP-side setting: force it here.
    client.config.setattr("idp", "want_authn_requests_signed", True)
    if binding == BINDING_HTTP_REDIRECT:
        return client.parse_logout_request(
            data["SAMLRequest"], binding, data.get("RelayState"), data.get("SigAlg"), data.get("Signature")
        )
    return client.parse_logout_request(data["SAMLRequest"], binding)


def _answer_logout_request(request: HttpRequest, idp: IdentityProvider, data: QueryDict, binding: str) -> HttpResponse:
    try:
        logout_request = _verified_logout_request(idp, data, binding)
    except Exception as exc:
        logger.warning("SAML logout request to %s refused: %s", idp.instance.alias, exc)
        return refused(request, idp.instance, refusal_for(exc))
    logout(request)
    client = saml_client(idp)
    answer = client.create_logout_response(logout_request.message, [BINDING_HTTP_REDIRECT])
    relay_state = data.get("RelayState", "")
    info = client.apply_binding(BINDING_HTTP_REDIRECT, str(answer), idp.slo_url, relay_state, response=True, sign=True)
    return HttpResponseRedirect(dict(info["headers"])["Location"])


@csrf_exempt  # Front-channel logout messages come from the identity provider's site.
@never_cache
@require_http_methods(["GET", "POST"])
def saml_sls(request: HttpRequest, alias: str) -> HttpResponse:
    """Single logout started by the IdP: a signed LogoutRequest ends the session and is answered."""
    instance = get_object_or_404(Instance, alias=alias)
    idp = _enabled_idp(alias)
    if idp is None:
        return refused(request, instance, errors.NO_IDENTITY_PROVIDER)
    data = request.POST if request.method == "POST" else request.GET
    binding = BINDING_HTTP_POST if request.method == "POST" else BINDING_HTTP_REDIRECT
    if "SAMLRequest" not in data:
        # ccphost sends no LogoutRequest of its own yet, so it expects no LogoutResponse.
        return refused(request, instance, errors.MALFORMED)
    return _answer_logout_request(request, idp, data, binding)


@require_POST
def instance_logout(request: HttpRequest, alias: str) -> HttpResponse:
    """Sign-out from the CCP: end the session; the CCP then posts ``terminated`` to its host."""
    instance = get_object_or_404(Instance, alias=alias)
    logout(request)
    if "application/json" in request.headers.get("Accept", ""):
        return JsonResponse({"signedIn": False, "event": "terminated", "alias": alias})
    return render(request, "accounts/signed_out.html", {"instance": instance})
