"""Make and show signing keys (the `cqrs_keys` command's work)."""

from __future__ import annotations

import os

from cqrs_outbox import keyring
from cqrs_outbox.core import signing
from cqrs_outbox.core.errors import ConfigurationError

PRIVATE_MODE = 0o600  # only the owner may read a private key


def generate(key_id: str, path: str) -> str:
    """Write a new private key to `path` (mode 0600, never over a file) and return its
    public key."""
    signing.check_key_id(key_id)
    pem, public = signing.generate()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    except FileExistsError:
        raise ConfigurationError(f"{path} exists already; give another --out path") from None
    except OSError as exc:
        raise ConfigurationError(f"cannot write {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    os.chmod(path, PRIVATE_MODE)  # whatever the umask
    return public


def snippet(key_id: str, path: str, public: str) -> str:
    """Return the settings lines for the master and for its replicas."""
    return (
        "# On the master service (keep the key file out of version control):\n"
        f"CQRS['master']['signing_key'] = {{'id': {key_id!r}, 'file': {path!r}}}\n"
        "# On each replica service (replace '*' with the master's cqrs_ids):\n"
        f"CQRS['replica']['trusted_keys'] = {{'*': {{{key_id!r}: {public!r}}}}}\n"
        "CQRS['replica']['signatures'] = 'warn'  # 'require' once every master signs\n"
    )


def show(path: str | None) -> str:
    """Return the line `cqrs_keys show` prints: the public key of a key file, or the key
    id and public key of this master's signing key."""
    if path is not None:
        return keyring.load_signer({"id": "file", "file": path}).public_key()
    signer = keyring.signer()
    if signer is None:
        raise ConfigurationError(
            "CQRS['master']['signing_key'] is not set; give --file PATH of a key file"
        )
    return f"{signer.key_id} {signer.public_key()}"
