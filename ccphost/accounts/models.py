"""Who may sign in to which instance, the identity provider of each instance, and consumed assertions."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from ccphost.accounts.metadata import MetadataError, read_idp_metadata
from ccphost.instances.models import Instance


class IdentityProvider(models.Model):
    """The SAML identity provider that signs agents in to one instance."""

    instance = models.OneToOneField(Instance, on_delete=models.CASCADE, related_name="identity_provider")
    enabled = models.BooleanField(default=True)
    metadata_xml = models.TextField(
        "metadata XML", help_text="The identity provider's SAML metadata (EntityDescriptor), pasted or uploaded."
    )
    entity_id = models.CharField("entity id", max_length=1024, editable=False)
    sso_url = models.URLField("single sign-on URL", max_length=1024, editable=False)
    slo_url = models.URLField("single logout URL", max_length=1024, blank=True, editable=False)
    username_attribute = models.CharField(
        max_length=200, default="uid", help_text="SAML attribute holding the username; empty to use the NameID."
    )
    email_attribute = models.CharField(max_length=200, blank=True, default="mail")
    first_name_attribute = models.CharField(max_length=200, blank=True, default="givenName")
    last_name_attribute = models.CharField(max_length=200, blank=True, default="sn")
    create_users_on_first_sign_in = models.BooleanField(
        default=False,
        help_text="Create an agent account for a new username the identity provider vouches for. "
        "When off, only users given access to this instance by an admin may sign in.",
    )
    want_response_signed = models.BooleanField(
        default=False, help_text="Also require the whole Response to be signed (assertions always must be)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "SAML identity provider"

    def __str__(self) -> str:
        return f"{self.entity_id or 'identity provider'} for {self.instance.alias}"

    def save(self, *args: object, **kwargs: object) -> None:
        # Derived fields always follow the metadata, however the row is written.
        metadata = read_idp_metadata(self.metadata_xml)
        self.entity_id, self.sso_url, self.slo_url = metadata.entity_id, metadata.sso_url, metadata.slo_url
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def clean(self) -> None:
        try:
            metadata = read_idp_metadata(self.metadata_xml)
        except MetadataError as exc:
            raise ValidationError({"metadata_xml": str(exc)}) from None
        self.entity_id, self.sso_url, self.slo_url = metadata.entity_id, metadata.sso_url, metadata.slo_url


class AgentAccess(models.Model):
    """An admin's grant: ``user`` may sign in to ``instance`` through its identity provider."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="agent_access")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="agent_access")
    created_on_first_sign_in = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "agent access"
        verbose_name_plural = "agent access"
        constraints = [models.UniqueConstraint(fields=["instance", "user"], name="unique_agent_access")]

    def __str__(self) -> str:
        return f"{self.user} may sign in to {self.instance.alias}"


class ConsumedAssertion(models.Model):
    """A SAML assertion already used to sign in: a second use is a replay."""

    identity_provider = models.ForeignKey(IdentityProvider, on_delete=models.CASCADE, related_name="+")
    assertion_id = models.CharField(max_length=255)
    expires_at = models.DateTimeField(db_index=True, help_text="After this the assertion is refused anyway.")
    consumed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["identity_provider", "assertion_id"], name="unique_consumed_assertion")
        ]

    def __str__(self) -> str:
        return self.assertion_id
