"""The boto3 Connect client for an instance, and AWS errors turned into plain messages."""

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from ccphost.instances.models import Instance


class OriginSyncError(Exception):
    """Syncing approved origins with Amazon Connect failed; the message says why and what to do."""


# Short timeouts and a few standard retries (which back off on throttling) so a command
# or admin action never hangs on AWS.
CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=15, retries={"mode": "standard", "max_attempts": 4})

CLIENT_ERROR_HINTS = {
    "ThrottlingException": "Amazon Connect is throttling requests; wait a minute and run the sync again.",
    "TooManyRequestsException": "Amazon Connect is throttling requests; wait a minute and run the sync again.",
    "AccessDeniedException": (
        "AWS refused access: the credentials need connect:ListApprovedOrigins, "
        "connect:AssociateApprovedOrigin and connect:DisassociateApprovedOrigin on this instance."
    ),
    "ResourceNotFoundException": (
        "Amazon Connect has no instance with this id in this region: check the instance's "
        "AWS region and Amazon Connect instance id."
    ),
}


def connect_client(instance: Instance) -> Any:
    """A Connect client for the instance's region, with credentials from boto3's default chain."""
    return boto3.client("connect", region_name=instance.aws_region, config=CLIENT_CONFIG)


def describe_aws_error(instance: Instance, exc: Exception) -> str:
    """One message for a person: which instance, what AWS said, and what to do about it."""
    where = f"Amazon Connect instance {instance.aws_instance_id} ({instance.aws_region}) for {instance.alias}"
    if isinstance(exc, NoCredentialsError):
        return (
            f"{where}: no AWS credentials found. Set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "AWS_PROFILE, or run with an IAM role."
        )
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "Unknown")
        message = exc.response.get("Error", {}).get("Message", "")
        hint = CLIENT_ERROR_HINTS.get(code, "")
        text = f"{where}: {code}" + (f": {message}" if message else "") + "."
        return f"{text} {hint}".strip()
    if isinstance(exc, BotoCoreError):
        return f"{where}: {exc}"
    return f"{where}: {exc!r}"
