"""Contact-center instances, the origins approved to embed their CCP, and the audit trail."""

import re
import uuid
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

from ccphost.instances.origins import MAX_ORIGIN_LENGTH, OriginError, normalize_origin

# Widths and heights of the CCP frame that Amazon's CCP supports.
CCP_MIN_WIDTH, CCP_MAX_WIDTH = 200, 320
CCP_COMPACT_BELOW_WIDTH = 221
CCP_HEIGHT, CCP_COMPACT_HEIGHT, CCP_MAX_HEIGHT = 465, 400, 1200

AMAZON_CCP_HOST = re.compile(r"^[a-z0-9][a-z0-9-]{0,61}\.(my\.connect\.aws|awsapps\.com)$")
AWS_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")

alias_validator = RegexValidator(
    r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$",
    "An alias is 1-40 lowercase letters, digits and hyphens, not starting or ending with a hyphen.",
)


def validate_origin_field(value: str) -> None:
    try:
        normalize_origin(value)
    except OriginError as exc:
        raise ValidationError(str(exc), code="invalid_origin") from None


def validate_amazon_ccp_url(value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme != "https":
        raise ValidationError("An Amazon Connect CCP URL must use https.")
    if not parts.hostname or not AMAZON_CCP_HOST.match(parts.hostname):
        raise ValidationError(
            "An Amazon Connect CCP URL is on <instance>.my.connect.aws (or <instance>.awsapps.com), "
            "like https://example.my.connect.aws/ccp-v2/."
        )
    if not parts.path.rstrip("/").endswith("/ccp-v2") and not parts.path.rstrip("/").endswith("/connect/ccp-v2"):
        raise ValidationError("An Amazon Connect CCP URL ends in /ccp-v2/.")
    if parts.query or parts.fragment or parts.username:
        raise ValidationError("An Amazon Connect CCP URL has no query, fragment or user info.")


class Instance(models.Model):
    class Kind(models.TextChoices):
        HOSTED = "hosted", "Hosted by ccphost"
        AMAZON_CONNECT = "amazon_connect", "Amazon Connect"

    alias = models.CharField(
        max_length=40,
        unique=True,
        validators=[alias_validator],
        help_text="Used in URLs: /connect/<alias>/ccp-v2/. Cannot be changed later.",
    )
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.HOSTED)
    ccp_url = models.URLField(
        "CCP URL",
        blank=True,
        help_text="Amazon Connect instances only: https://<instance>.my.connect.aws/ccp-v2/",
    )
    aws_region = models.CharField("AWS region", max_length=30, blank=True)
    aws_instance_id = models.UUIDField("Amazon Connect instance id", null=True, blank=True)
    # The instance id ccphost uses in ARNs for hosted instances.
    arn_instance_id = models.UUIDField(default=uuid.uuid4, editable=False)

    login_popup = models.BooleanField(default=True, help_text="Open a login popup when the agent is not signed in.")
    login_popup_auto_close = models.BooleanField(default=True, help_text="Close the login popup after sign-in.")
    login_url = models.URLField(
        "login URL", blank=True, help_text="Where the login popup goes; empty for ccphost's own sign-in page."
    )
    allow_framed_softphone = models.BooleanField(default=True)
    disable_ringtone = models.BooleanField(default=False)
    ringtone_url = models.URLField("ringtone URL", blank=True)
    ringtone_file = models.FileField(upload_to="ringtones/", blank=True)
    ccp_width = models.PositiveSmallIntegerField("CCP width (px)", default=320)
    ccp_height = models.PositiveSmallIntegerField("CCP height (px)", default=CCP_HEIGHT)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["alias"]

    def __str__(self) -> str:
        return f"{self.name} ({self.alias})"

    @property
    def is_compact(self) -> bool:
        return self.ccp_width < CCP_COMPACT_BELOW_WIDTH

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        if not CCP_MIN_WIDTH <= self.ccp_width <= CCP_MAX_WIDTH:
            errors.setdefault("ccp_width", []).append(
                f"The CCP is {CCP_MIN_WIDTH} to {CCP_MAX_WIDTH} px wide "
                f"(compact layout below {CCP_COMPACT_BELOW_WIDTH} px)."
            )
        else:
            minimum = CCP_COMPACT_HEIGHT if self.is_compact else CCP_HEIGHT
            layout = "compact" if self.is_compact else "standard"
            if not minimum <= self.ccp_height <= CCP_MAX_HEIGHT:
                errors.setdefault("ccp_height", []).append(
                    f"The {layout} CCP ({self.ccp_width} px wide) needs a height of {minimum} to {CCP_MAX_HEIGHT} px."
                )
        if self.kind == self.Kind.AMAZON_CONNECT:
            if not self.ccp_url:
                errors.setdefault("ccp_url", []).append("An Amazon Connect instance needs its CCP URL.")
            else:
                try:
                    validate_amazon_ccp_url(self.ccp_url)
                except ValidationError as exc:
                    errors.setdefault("ccp_url", []).extend(exc.messages)
            if not AWS_REGION.match(self.aws_region or ""):
                errors.setdefault("aws_region", []).append("Give the instance's AWS region, like us-east-1.")
            if not self.aws_instance_id:
                errors.setdefault("aws_instance_id", []).append("Give the Amazon Connect instance id (a UUID).")
        elif self.ccp_url:
            errors.setdefault("ccp_url", []).append("Only Amazon Connect instances have an external CCP URL.")
        if self.ringtone_url and self.ringtone_file:
            errors.setdefault("ringtone_url", []).append("Give a ringtone URL or upload a file, not both.")
        if self.ringtone_url and urlsplit(self.ringtone_url).scheme != "https" and not settings.DEBUG:
            errors.setdefault("ringtone_url", []).append("The ringtone URL must use https.")
        if errors:
            raise ValidationError(errors)

    @property
    def arn_prefix(self) -> str:
        region = self.aws_region or "us-east-1"
        instance_id = self.aws_instance_id or self.arn_instance_id
        return f"arn:aws:connect:{region}:000000000000:instance/{instance_id}"


class ApprovedOrigin(models.Model):
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="origins")
    origin = models.CharField(max_length=MAX_ORIGIN_LENGTH, validators=[validate_origin_field])
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["origin"]
        constraints = [models.UniqueConstraint(fields=["instance", "origin"], name="unique_origin_per_instance")]

    def __str__(self) -> str:
        return self.origin


class OriginAudit(models.Model):
    class Action(models.TextChoices):
        ADDED = "added"
        REMOVED = "removed"
        CHANGED = "changed"

    class Source(models.TextChoices):
        ADMIN = "admin"
        COMMAND = "command"
        API = "api"
        SYNC = "sync"

    instance = models.ForeignKey(Instance, null=True, on_delete=models.SET_NULL, related_name="origin_audits")
    instance_alias = models.CharField(max_length=40)
    action = models.CharField(max_length=10, choices=Action.choices)
    old_value = models.CharField(max_length=MAX_ORIGIN_LENGTH, blank=True)
    new_value = models.CharField(max_length=MAX_ORIGIN_LENGTH, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_name = models.CharField(max_length=150, help_text="Who, kept even if the user is deleted.")
    source = models.CharField(max_length=10, choices=Source.choices)
    remote_addr = models.GenericIPAddressField("from address", null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "origin audit entry"
        verbose_name_plural = "origin audit log"

    def __str__(self) -> str:
        value = self.new_value or self.old_value
        return f"{self.instance_alias}: {self.action} {value} by {self.actor_name} ({self.source})"
