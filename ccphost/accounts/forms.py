"""Admin forms: identity-provider metadata upload, and the Amazon Connect federation login URL."""

from typing import Any

from django import forms

from ccphost.accounts.federation import FederationUrlError, build_federation_login_url
from ccphost.accounts.metadata import MetadataError, read_idp_metadata
from ccphost.accounts.models import IdentityProvider
from ccphost.instances.models import Instance

MAX_METADATA_BYTES = 1024 * 1024


class IdentityProviderForm(forms.ModelForm):
    metadata_file = forms.FileField(
        required=False, help_text="Upload the identity provider's metadata XML file (replaces the text above)."
    )

    class Meta:
        model = IdentityProvider
        fields = [
            "instance",
            "enabled",
            "metadata_xml",
            "metadata_file",
            "username_attribute",
            "email_attribute",
            "first_name_attribute",
            "last_name_attribute",
            "create_users_on_first_sign_in",
            "want_response_signed",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["metadata_xml"].required = False

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        upload = cleaned.get("metadata_file")
        if upload is not None:
            if upload.size > MAX_METADATA_BYTES:
                raise forms.ValidationError({"metadata_file": "Metadata files are at most 1 MB."})
            try:
                cleaned["metadata_xml"] = upload.read().decode("utf-8")
            except UnicodeDecodeError:
                raise forms.ValidationError({"metadata_file": "The metadata file is not UTF-8 XML."}) from None
        if not cleaned.get("metadata_xml"):
            raise forms.ValidationError({"metadata_xml": "Paste or upload the identity provider's metadata."})
        try:
            read_idp_metadata(cleaned["metadata_xml"])
        except MetadataError as exc:
            raise forms.ValidationError({"metadata_xml": str(exc)}) from None
        self.instance.metadata_xml = cleaned["metadata_xml"]
        return cleaned


class FederationLoginUrlForm(forms.Form):
    """Builds (and validates) an Amazon Connect instance's login URL from its IdP's SSO URL."""

    idp_sso_url = forms.URLField(label="Identity provider SSO URL", max_length=1024, assume_scheme="https")

    def __init__(self, *args: Any, instance: Instance, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ccp_instance = instance

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.ccp_instance.kind != Instance.Kind.AMAZON_CONNECT:
            raise forms.ValidationError("Only Amazon Connect instances are federated through an identity provider.")
        if "idp_sso_url" in cleaned:
            try:
                cleaned["login_url"] = build_federation_login_url(
                    cleaned["idp_sso_url"], self.ccp_instance.aws_region, str(self.ccp_instance.aws_instance_id or "")
                )
            except FederationUrlError as exc:
                raise forms.ValidationError(str(exc)) from None
        return cleaned
