"""Read the signing settings: the master's private key and the replica's trusted keys.

`CQRS['master']['signing_key']` is `{'id': K, 'file': path}` or `{'id': K, 'env': NAME}`
(the variable holding the PEM text); the key itself never sits in settings.
`CQRS['replica']['trusted_keys']` maps a cqrs_id, or '*', to `{key id: public key}`.
Keys are loaded once per process and setting; `problems()` feeds the system checks.
"""

from __future__ import annotations

import os
from typing import Any

from cqrs_outbox import conf
from cqrs_outbox.core import signing
from cqrs_outbox.core.errors import ConfigurationError

MASTER_PATH = "CQRS['master']['signing_key']"
TRUSTED_PATH = "CQRS['replica']['trusted_keys']"
SPEC_KEYS = {"id", "file", "env"}

_signers: dict[tuple, signing.Signer] = {}
_verifiers: dict[str, signing.Verifier] = {}


def _spec_key(spec: dict) -> tuple:
    return (spec.get("id"), spec.get("file"), spec.get("env"))


def read_private(spec: dict) -> tuple[bytes, str]:
    """Return the PEM bytes a signing_key spec points at, and where they came from."""
    unknown = set(spec) - SPEC_KEYS
    if unknown:
        raise ConfigurationError(
            f"{MASTER_PATH} has unknown keys {sorted(unknown)}: give 'id' and either 'file' "
            "(a path) or 'env' (an environment variable); never the key itself"
        )
    if "id" not in spec or ("file" in spec) == ("env" in spec):
        raise ConfigurationError(
            f"{MASTER_PATH} needs 'id' and exactly one of 'file' or 'env'"
        )
    if "file" in spec:
        source = f"{MASTER_PATH}['file'] ({spec['file']})"
        try:
            with open(spec["file"], "rb") as handle:
                return handle.read(), source
        except OSError as exc:
            raise ConfigurationError(f"{source} cannot be read: {exc.strerror}") from exc
    source = f"environment variable {spec['env']} ({MASTER_PATH}['env'])"
    value = os.environ.get(str(spec["env"]))
    if not value:
        raise ConfigurationError(f"{source} is not set")
    return value.encode(), source


def load_signer(spec: dict) -> signing.Signer:
    """Load the private key a signing_key spec names; raise ConfigurationError if unusable."""
    pem, source = read_private(spec)
    return signing.load_signer(spec["id"], pem, source)


def signer(settings: conf.Settings | None = None) -> signing.Signer | None:
    """Return this master's signer, or None when events are not signed."""
    spec = (settings or conf.get()).master.signing_key
    if spec is None:
        return None
    key = _spec_key(spec)
    found = _signers.get(key)
    if found is None:
        found = _signers[key] = load_signer(spec)
    return found


def trusted_keys(raw: dict) -> dict[str, dict[str, Any]]:
    """Return the trusted keys loaded; raise ConfigurationError naming the bad entry."""
    loaded: dict[str, dict[str, Any]] = {}
    for cqrs_id, keys in raw.items():
        where = f"{TRUSTED_PATH}[{cqrs_id!r}]"
        if not isinstance(keys, dict):
            raise ConfigurationError(f"{where} must be a dict of key id to public key")
        loaded[cqrs_id] = {}
        for key_id, text in keys.items():
            signing.check_key_id(key_id)
            loaded[cqrs_id][key_id] = signing.load_public(text, f"{where}[{key_id!r}]")
    return loaded


def verifier(settings: conf.Settings | None = None) -> signing.Verifier | None:
    """Return the replica's verifier, or None when CQRS['replica']['signatures'] is 'off'."""
    replica = (settings or conf.get()).replica
    if replica.signatures == conf.SIGNATURES_OFF:
        return None
    raw = replica.trusted_keys or {}
    key = repr(sorted((k, sorted(v.items())) for k, v in raw.items()))
    found = _verifiers.get(key)
    if found is None:
        found = _verifiers[key] = signing.Verifier(trusted_keys(raw))
    return found


def duplicate_key_ids(raw: dict) -> list[str]:
    """Return key ids that stand for two different public keys in trusted_keys."""
    seen: dict[str, str] = {}
    twice = []
    for keys in raw.values():
        for key_id, text in (keys or {}).items() if isinstance(keys, dict) else ():
            if key_id in seen and seen[key_id] != text and key_id not in twice:
                twice.append(key_id)
            seen.setdefault(key_id, text)
    return twice


def problems(raw: Any) -> list[conf.Problem]:
    """List what is wrong with the signing settings of a `CQRS` dict, for the checks."""
    if not isinstance(raw, dict):
        return []
    master = raw.get("master") if isinstance(raw.get("master"), dict) else {}
    replica = raw.get("replica") if isinstance(raw.get("replica"), dict) else {}
    spec, trusted = master.get("signing_key"), replica.get("trusted_keys")
    policy = replica.get("signatures", conf.SIGNATURES_OFF)
    if not (isinstance(spec, dict) or policy in conf.SIGNATURE_POLICIES[1:] or trusted):
        return []
    try:
        signing.require()
    except signing.SigningUnavailable as exc:
        return [conf.Problem("cqrs_outbox.E018", str(exc), signing.INSTALL_HINT)]
    found = _master_problems(spec) if isinstance(spec, dict) else []
    return found + _replica_problems(trusted, policy)


def _master_problems(spec: dict) -> list[conf.Problem]:
    try:
        load_signer(spec)
    except signing.WrongKeyKind as exc:
        return [conf.Problem("cqrs_outbox.E020", f"{exc}.",
                             "Point 'file' or 'env' at the private key; give the public key to "
                             "replicas in CQRS['replica']['trusted_keys'].")]
    except ConfigurationError as exc:
        return [conf.Problem("cqrs_outbox.E019", f"{exc}.",
                             "Use {'id': 'orders-1', 'file': '/run/secrets/cqrs.pem'} or "
                             "{'id': 'orders-1', 'env': 'CQRS_SIGNING_KEY'}; "
                             "`manage.py cqrs_keys generate --id ID` writes a key file.")]
    return []


def _replica_problems(trusted: Any, policy: Any) -> list[conf.Problem]:
    found = []
    if isinstance(trusted, dict):
        try:
            trusted_keys(trusted)
        except signing.WrongKeyKind as exc:
            found.append(conf.Problem("cqrs_outbox.E020", f"{exc}.",
                                      "Give the public key `cqrs_keys show` prints."))
        except ConfigurationError as exc:
            found.append(conf.Problem("cqrs_outbox.E023", f"{exc}.",
                                      "Map each cqrs_id or '*' to {key id: public key}, the "
                                      "public key as `cqrs_keys show` prints it."))
        for key_id in duplicate_key_ids(trusted):
            found.append(conf.Problem(
                "cqrs_outbox.E022",
                f"{TRUSTED_PATH} uses key id {key_id!r} for two different public keys.",
                "Give every key its own id; a replica knows which key signed by its id."))
    if policy == conf.SIGNATURES_REQUIRE and not trusted:
        found.append(conf.Problem(
            "cqrs_outbox.E021",
            "CQRS['replica']['signatures'] is 'require' but no trusted_keys are set: every "
            "event would be dead-lettered.",
            f"Add the masters' public keys to {TRUSTED_PATH}, or use 'warn' until they sign."))
    return found
