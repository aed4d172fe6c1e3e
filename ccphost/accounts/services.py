"""Turning a verified SAML identity into a signed-in agent: access, first sign-in, replay."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from ccphost.accounts import errors
from ccphost.accounts.errors import SignInRefusal
from ccphost.accounts.models import AgentAccess, ConsumedAssertion, IdentityProvider
from ccphost.accounts.saml import SignedInIdentity

# Consumed assertions are kept this long past their own expiry, then forgotten.
CONSUMED_ASSERTION_GRACE = timedelta(hours=1)


class SignInRefused(Exception):
    def __init__(self, refusal: SignInRefusal) -> None:
        super().__init__(refusal.title)
        self.refusal = refusal


def first_attribute(identity: SignedInIdentity, name: str) -> str:
    values = identity.attributes.get(name) if name else None
    return str(values[0]).strip() if values else ""


def mapped_username(idp: IdentityProvider, identity: SignedInIdentity) -> str:
    if not idp.username_attribute:
        return identity.name_id.strip()
    return first_attribute(identity, idp.username_attribute)


def update_profile(user: User, idp: IdentityProvider, identity: SignedInIdentity) -> None:
    """Copy the mapped attributes the assertion carries onto the user."""
    fields = {
        "email": idp.email_attribute,
        "first_name": idp.first_name_attribute,
        "last_name": idp.last_name_attribute,
    }
    changed = []
    for field, attribute in fields.items():
        value = first_attribute(identity, attribute)[: user._meta.get_field(field).max_length]  # type: ignore[union-attr]
        if value and getattr(user, field) != value:
            setattr(user, field, value)
            changed.append(field)
    if changed:
        user.save(update_fields=changed)


def _agent_with_access(idp: IdentityProvider, username: str) -> User:
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    if user is not None:
        if not user.is_active or not AgentAccess.objects.filter(instance=idp.instance, user=user).exists():
            raise SignInRefused(errors.NOT_ALLOWED)
        return user
    if not idp.create_users_on_first_sign_in:
        raise SignInRefused(errors.NOT_ALLOWED)
    user = user_model(username=username)
    user.set_unusable_password()
    user.save()
    AgentAccess.objects.create(instance=idp.instance, user=user, created_on_first_sign_in=True)
    return user


def consume_assertion(idp: IdentityProvider, identity: SignedInIdentity) -> None:
    """Record the assertion as used; SignInRefused(REPLAYED) when it already was."""
    ConsumedAssertion.objects.filter(expires_at__lt=timezone.now() - CONSUMED_ASSERTION_GRACE).delete()
    try:
        with transaction.atomic():
            ConsumedAssertion.objects.create(
                identity_provider=idp, assertion_id=identity.assertion_id, expires_at=identity.expires_at
            )
    except IntegrityError:
        raise SignInRefused(errors.REPLAYED) from None


def agent_for_assertion(idp: IdentityProvider, identity: SignedInIdentity) -> User:
    """The user a verified assertion signs in, all or nothing: a refusal leaves no trace."""
    username = mapped_username(idp, identity)
    if not username or len(username) > get_user_model()._meta.get_field("username").max_length:  # type: ignore[operator]
        raise SignInRefused(errors.MISSING_ATTRIBUTE)
    with transaction.atomic():
        consume_assertion(idp, identity)
        user = _agent_with_access(idp, username)
        update_profile(user, idp, identity)
    return user
