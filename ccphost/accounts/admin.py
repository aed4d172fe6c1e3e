"""Admin for identity providers (metadata upload, SP metadata link, federation preview) and agent access."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from ccphost.accounts.federation import FederationUrlError, build_federation_login_url
from ccphost.accounts.forms import IdentityProviderForm
from ccphost.accounts.models import AgentAccess, IdentityProvider
from ccphost.instances.models import Instance


def federation_login_url(idp: IdentityProvider) -> str:
    """The Amazon Connect login URL for the IdP's instance; raises FederationUrlError."""
    instance = idp.instance
    if instance.kind != Instance.Kind.AMAZON_CONNECT:
        raise FederationUrlError("Only Amazon Connect instances are federated through an identity provider.")
    return build_federation_login_url(idp.sso_url, instance.aws_region, str(instance.aws_instance_id or ""))


@admin.register(IdentityProvider)
class IdentityProviderAdmin(admin.ModelAdmin):
    form = IdentityProviderForm
    list_display = ["instance", "entity_id", "enabled", "create_users_on_first_sign_in"]
    list_filter = ["enabled", "create_users_on_first_sign_in"]
    readonly_fields = ["entity_id", "sso_url", "slo_url", "sp_metadata", "federation_login_url_preview"]
    actions = ["set_federation_login_url"]

    @admin.display(description="ccphost's SP metadata (give it to the identity provider)")
    def sp_metadata(self, idp: IdentityProvider) -> str:
        if not idp.pk:
            return "Shown after saving."
        url = reverse("accounts:saml_metadata", args=[idp.instance.alias])
        return format_html('<a href="{}">{}</a>', url, url)

    @admin.display(description="Amazon Connect login URL (preview)")
    def federation_login_url_preview(self, idp: IdentityProvider) -> str:
        if not idp.pk:
            return "Shown after saving."
        try:
            return federation_login_url(idp)
        except FederationUrlError as exc:
            return f"Not available: {exc}"

    @admin.action(description="Set the Amazon Connect instance's login URL to its federation URL")
    def set_federation_login_url(self, request: HttpRequest, queryset: QuerySet[IdentityProvider]) -> None:
        for idp in queryset.select_related("instance"):
            try:
                url = federation_login_url(idp)
            except FederationUrlError as exc:
                self.message_user(request, f"{idp.instance.alias}: {exc}", messages.ERROR)
                continue
            idp.instance.login_url = url
            idp.instance.save(update_fields=["login_url", "updated_at"])
            self.message_user(request, f"{idp.instance.alias}: login URL set to {url}", messages.SUCCESS)


@admin.register(AgentAccess)
class AgentAccessAdmin(admin.ModelAdmin):
    list_display = ["user", "instance", "created_on_first_sign_in", "created_at"]
    list_filter = ["instance", "created_on_first_sign_in"]
    search_fields = ["user__username", "user__email", "instance__alias"]
    autocomplete_fields = ["user"]
