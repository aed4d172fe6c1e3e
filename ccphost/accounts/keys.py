"""The service provider's key pair: read from settings, generated on first use when absent."""

import datetime
import fcntl
import os
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from django.conf import settings

CERT_VALIDITY = datetime.timedelta(days=3650)


def sp_key_paths() -> tuple[Path, Path]:
    """(key file, certificate file) of the SP, from settings or under VAR_DIR/saml/."""
    return Path(settings.SAML_SP_KEY_FILE), Path(settings.SAML_SP_CERT_FILE)


def self_signed_key_pair(common_name: str) -> tuple[bytes, bytes]:
    """A new RSA key and a self-signed certificate for it, both PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + CERT_VALIDITY)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def _write_private(path: Path, content: bytes, mode: int) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
    os.replace(temporary, path)


def ensure_sp_key_pair() -> tuple[Path, Path]:
    """The SP key pair's paths, generating both files when either is missing.

    A lock file serializes workers starting together, so they never mix two key pairs.
    """
    key_path, cert_path = sp_key_paths()
    if key_path.exists() and cert_path.exists():
        return key_path, cert_path
    key_path.parent.mkdir(parents=True, exist_ok=True)
    with open(key_path.parent / ".sp-key.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (key_path.exists() and cert_path.exists()):
            host = urlsplit(settings.SITE_URL).hostname or "ccphost"
            key_pem, cert_pem = self_signed_key_pair(host)
            _write_private(key_path, key_pem, 0o600)
            _write_private(cert_path, cert_pem, 0o644)
    return key_path, cert_path
