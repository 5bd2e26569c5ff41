"""The `CQRS` settings dict, validated and read through one typed object.

`problems()` lists what is wrong with the dict (the system checks report them);
`get()` returns the typed settings and raises ConfigurationError when the dict is bad.
Values django-cqrs tolerates (a zero TTL, a negative retry count...) are warnings: they
are logged once and replaced by the default, as django-cqrs does.

`get()` reads `settings.CQRS` live: a change, reassigned or made in place, is seen by
the next call. It keeps the last result with a copy of the dict it came from, so the
cost of a call is one dict comparison.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings as django_settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from cqrs_outbox.core import contract, wire
from cqrs_outbox.core.errors import ConfigurationError
from cqrs_outbox.core.urls import BrokerAddress, parse_broker_urls, redact
from relay import engine

DEFAULT_MESSAGE_TTL = 86400  # seconds
DEFAULT_MAX_RETRIES = 30
DEFAULT_RETRY_DELAY = 2  # seconds
DEFAULT_DEAD_MESSAGE_TTL = 864000  # seconds
DEFAULT_REPLICA_BATCH_SIZE = 250  # messages per apply transaction
# Unacknowledged messages per worker: one batch being applied and the next on its way.
# A worker that crashes hands back its whole window, and each message in it counts one
# more delivery against a quorum queue's delivery limit: a small window keeps that small.
DEFAULT_PREFETCH_COUNT = 2 * DEFAULT_REPLICA_BATCH_SIZE
DEFAULT_TOMBSTONE_RETENTION = 7 * 86400  # seconds
RELAY_DEFAULTS = engine.Config()  # the relay's defaults live with its config, once
MASK_VALUE = "'***'"  # how a check message quotes the value of a password setting
SIGNATURES_OFF, SIGNATURES_WARN, SIGNATURES_REQUIRE = "off", "warn", "require"
SIGNATURE_POLICIES = (SIGNATURES_OFF, SIGNATURES_WARN, SIGNATURES_REQUIRE)

logger = logging.getLogger(__name__)

# django-cqrs keys that mean nothing here; they are reported as warnings, not errors,
# so a settings module shared with django-cqrs services still passes the checks.
IGNORED_KEYS = {"transport", "consumer_prefetch_count"}


@dataclass(frozen=True)
class Key:
    """One accepted key: its type check and default.

    A `tolerated` key is one django-cqrs logs and replaces with the default when its
    value is bad: `tolerated` is then the warning id, and `label` opens the log line.
    """

    kind: str  # 'int', 'num', 'bool', 'str', 'urls', 'callable', 'dict'
    default: Any
    nullable: bool = False
    minimum: float = 0
    tolerated: str | None = None
    label: str = ""
    choices: tuple = ()


# CQRS['master']['capture']: 'orm' makes update(), bulk_update() and bulk_create() write
# events (cqrs_outbox.master.capture); 'database' adds triggers that catch writes made
# outside the ORM (cqrs_outbox.master.triggers); 'off' keeps django-cqrs's silent bulk calls.
CAPTURE_ORM, CAPTURE_DATABASE, CAPTURE_OFF = "orm", "database", "off"
CAPTURE_MODES = (CAPTURE_ORM, CAPTURE_DATABASE, CAPTURE_OFF)

TOP_KEYS = {
    "url": Key("urls", None, nullable=True),
    "host": Key("str", "localhost"),
    "port": Key("int", 5672, minimum=1),
    "user": Key("str", "guest"),
    "password": Key("str", "guest"),
    "vhost": Key("str", "/"),
    "exchange": Key("str", contract.DEFAULT_EXCHANGE),
    "queue": Key("str", None, nullable=True),
}
SECTION_KEYS = {
    "master": {
        "CQRS_AUTO_UPDATE_FIELDS": Key("bool", False),
        "CQRS_MESSAGE_TTL": Key(
            "int", DEFAULT_MESSAGE_TTL, nullable=True, minimum=1,
            tolerated="cqrs_outbox.W002", label="Settings CQRS_MESSAGE_TTL",
        ),
        "correlation_function": Key("callable", None, nullable=True),
        "meta_function": Key("callable", None, nullable=True),
        "signing_key": Key("dict", None, nullable=True),
        "capture": Key("str", CAPTURE_ORM, choices=CAPTURE_MODES),
    },
    "replica": {
        "CQRS_MAX_RETRIES": Key(
            "int", DEFAULT_MAX_RETRIES, nullable=True,
            tolerated="cqrs_outbox.W003", label="Replica setting CQRS_MAX_RETRIES",
        ),
        "CQRS_RETRY_DELAY": Key(
            "int", DEFAULT_RETRY_DELAY,
            tolerated="cqrs_outbox.W004", label="Replica setting CQRS_RETRY_DELAY",
        ),
        "CQRS_QUERY_TIMEOUT": Key("int", 0),
        "delay_queue_max_size": Key(
            "int", None, nullable=True, minimum=1,
            tolerated="cqrs_outbox.W005", label="Settings delay_queue_max_size",
        ),
        "dead_letter_queue": Key("str", None, nullable=True),
        "dead_message_ttl": Key("int", DEFAULT_DEAD_MESSAGE_TTL, nullable=True, minimum=1),
        "batch_size": Key("int", DEFAULT_REPLICA_BATCH_SIZE, minimum=1),
        "prefetch_count": Key("int", DEFAULT_PREFETCH_COUNT, minimum=1),
        "tombstone_retention": Key("int", DEFAULT_TOMBSTONE_RETENTION, minimum=1),
        "max_body_size": Key("int", wire.MAX_BODY_SIZE, minimum=1),
        "max_depth": Key("int", wire.MAX_DEPTH, minimum=2),
        "metrics_port": Key("int", None, nullable=True, minimum=1),
        "trusted_keys": Key("dict", None, nullable=True),
        "signatures": Key("str", SIGNATURES_OFF, choices=SIGNATURE_POLICIES),
    },
    "relay": {
        "batch_size": Key("int", RELAY_DEFAULTS.batch_size, minimum=1),
        "poll_interval": Key("num", RELAY_DEFAULTS.poll_interval, minimum=0.01),
        "lease_ttl": Key("num", RELAY_DEFAULTS.lease_ttl, minimum=1),
        "max_attempts": Key("int", RELAY_DEFAULTS.max_attempts, minimum=1),
        "retention": Key("int", RELAY_DEFAULTS.retention, minimum=0),
        "purge_batch_size": Key("int", RELAY_DEFAULTS.purge_batch_size, minimum=1),
        "metrics_port": Key("int", None, nullable=True, minimum=1),
    },
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the settings, with the check id that reports it."""

    id: str
    msg: str
    hint: str
    warning: bool = False


def _type_problem(path: str, key: Key, value: Any) -> Problem | None:
    if value is None:
        if key.nullable:
            return None
        return Problem("cqrs_outbox.E004", f"{path} must not be None.", _hint(key))
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "num": isinstance(value, (int, float)) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "str": isinstance(value, str) and bool(value),
        "urls": isinstance(value, str) and bool(value) or isinstance(value, (list, tuple))
        and bool(value) and all(isinstance(item, str) and item for item in value),
        "callable": callable(value) or isinstance(value, str),
        "dict": isinstance(value, dict),
    }[key.kind]
    if key.kind == "str" and value == "":
        return Problem("cqrs_outbox.E004", f"{path} must not be empty.", _hint(key))
    if not ok:
        return Problem("cqrs_outbox.E004", f"{path} has the wrong type: {_shown(path, value)}.",
                       _hint(key))
    if key.choices and value not in key.choices:
        return Problem("cqrs_outbox.E004", f"{path} must be one of "
                       f"{', '.join(map(repr, key.choices))}, got {_shown(path, value)}.",
                       _hint(key))
    if key.kind in ("int", "num") and value < key.minimum:
        return Problem("cqrs_outbox.E004", f"{path} must be at least {key.minimum}, got "
                       f"{_shown(path, value)}.", _hint(key))
    if key.kind == "callable" and isinstance(value, str):
        try:
            import_string(value)
        except ImportError:
            return Problem(
                "cqrs_outbox.E005",
                f"{path} names {value!r}, which cannot be imported.",
                "Give a callable or the dotted path of an importable function.",
            )
    return None


def _shown(path: str, value: Any) -> str:
    """Return how a message quotes a setting's value: passwords never appear."""
    if "password" in path.lower():
        return MASK_VALUE
    return redact(repr(value))



def _hint(key: Key) -> str:
    kinds = {
        "int": "an integer",
        "num": "a number",
        "bool": "True or False",
        "str": "a non-empty string",
        "urls": "an amqp:// URL, or a list of them",
        "callable": "a callable or its dotted path",
        "dict": "a dict",
    }
    text = f"Use {kinds[key.kind]}"
    if key.choices:
        text = "Use one of " + ", ".join(map(repr, key.choices))
    if key.kind in ("int", "num"):
        text += f" of at least {key.minimum}"
    if key.nullable:
        text += ", or None"
    return text + f" (default {key.default!r})."


def _section_problems(raw: dict, section: str) -> list[Problem]:
    value = raw[section]
    if not isinstance(value, dict):
        # None too: django-cqrs refuses a section that is there but no dict.
        got = "None" if value is None else type(value).__name__
        return [
            Problem(
                "cqrs_outbox.E002",
                f"CQRS['{section}'] must be a dict, got {got}.",
                f"Set CQRS['{section}'] to a dict of {section} settings, or remove it.",
            )
        ]
    found = []
    keys = SECTION_KEYS[section]
    for name, item in value.items():
        path = f"CQRS['{section}']['{name}']"
        if name not in keys:
            found.append(_unknown(path, keys))
            continue
        problem = _type_problem(path, keys[name], item)
        if problem and keys[name].tolerated and problem.id == "cqrs_outbox.E004":
            problem = _tolerated(path, keys[name], item)
        if problem:
            found.append(problem)
    return found


def _tolerated(path: str, key: Key, value: Any) -> Problem:
    return Problem(
        str(key.tolerated),
        f"{path} is invalid ({value!r}); the default {key.default!r} is used instead.",
        _hint(key),
        warning=True,
    )


def _unknown(path: str, keys: dict) -> Problem:
    return Problem(
        "cqrs_outbox.E003",
        f"{path} is not a known setting.",
        "Known keys here: " + ", ".join(sorted(keys)) + ".",
    )


def problems(raw: Any) -> list[Problem]:
    """List what is wrong with a `CQRS` settings dict (empty when it is valid)."""
    if not isinstance(raw, dict):
        return [
            Problem(
                "cqrs_outbox.E001",
                f"settings.CQRS must be a dict, got {type(raw).__name__}.",
                "Define CQRS = {'url': 'amqp://user:password@host:5672/vhost'} in settings.",
            )
        ]
    found = []
    for name, value in raw.items():
        if name in IGNORED_KEYS:
            found.append(_ignored(name))
        elif name in SECTION_KEYS:
            found.extend(_section_problems(raw, name))
        elif name not in TOP_KEYS:
            found.append(_unknown(f"CQRS['{name}']", {**TOP_KEYS, **SECTION_KEYS}))
        else:
            problem = _type_problem(f"CQRS['{name}']", TOP_KEYS[name], value)
            found.extend([problem] if problem else [])
    if "url" in raw and raw["url"] and _type_problem("url", TOP_KEYS["url"], raw["url"]) is None:
        try:
            parse_broker_urls(raw["url"], "CQRS['url']")
        except ConfigurationError as exc:
            found.append(
                Problem(
                    "cqrs_outbox.E006",
                    str(exc),
                    "Use amqp://user:password@host:5672/vhost (or amqps:// for TLS); for a "
                    "cluster, a list of such URLs or amqp://user:password@host1:5672,"
                    "host2:5672/vhost.",
                )
            )
    return found


def _ignored(name: str) -> Problem:
    if name == "transport":
        hint = (
            "Remove CQRS['transport']: cqrs-outbox writes events to the outbox table and "
            "`manage.py cqrs_relay` publishes them; the broker comes from CQRS['url']."
        )
    else:
        hint = f"Remove CQRS['{name}']; use CQRS['replica']['prefetch_count'] instead."
    message = f"CQRS['{name}'] is a django-cqrs key and is ignored."
    return Problem("cqrs_outbox.W001", message, hint, warning=True)


@dataclass(frozen=True)
class MasterSettings:
    auto_update_fields: bool
    message_ttl: int | None
    correlation_function: Callable[..., Any] | None
    meta_function: Callable[..., Any] | None
    signing_key: dict | None = None
    capture: str = "orm"


@dataclass(frozen=True)
class ReplicaSettings:
    max_retries: int | None
    retry_delay: int
    query_timeout: int
    delay_queue_max_size: int | None
    dead_letter_queue: str
    dead_message_ttl: int | None
    batch_size: int
    prefetch_count: int
    tombstone_retention: int
    max_body_size: int = wire.MAX_BODY_SIZE
    max_depth: int = wire.MAX_DEPTH
    metrics_port: int | None = None
    trusted_keys: dict | None = None
    signatures: str = SIGNATURES_OFF


@dataclass(frozen=True)
class RelaySettings:
    batch_size: int
    poll_interval: float
    lease_ttl: float
    max_attempts: int
    retention: int
    purge_batch_size: int
    metrics_port: int | None = None


@dataclass(frozen=True)
class Settings:
    """The validated `CQRS` settings.

    `brokers` lists every node `CQRS['url']` names, in order; `broker` is the first.
    """

    broker: BrokerAddress
    exchange: str
    queue: str | None
    master: MasterSettings
    replica: ReplicaSettings
    relay: RelaySettings
    brokers: tuple[BrokerAddress, ...] = ()

    @property
    def addresses(self) -> tuple[BrokerAddress, ...]:
        """Return every broker address to try, in order."""
        return self.brokers or (self.broker,)


def _section(raw: dict, name: str) -> dict:
    keys = SECTION_KEYS[name]
    values = {key: spec.default for key, spec in keys.items()}
    for key, value in (raw.get(name) or {}).items():
        spec = keys.get(key)
        if spec is not None and spec.tolerated and _type_problem(key, spec, value):
            logger.warning("%s=%s is invalid, using default %s.", spec.label, value, spec.default)
            continue
        values[key] = value
    return values


def _callable(value: Any) -> Callable[..., Any] | None:
    return import_string(value) if isinstance(value, str) else value


def _brokers(raw: dict) -> tuple[BrokerAddress, ...]:
    if raw.get("url"):
        return parse_broker_urls(raw["url"], "CQRS['url']")
    top = {key: raw.get(key, spec.default) for key, spec in TOP_KEYS.items()}
    return (BrokerAddress(
        "amqp", top["host"], top["port"], top["user"], top["password"], top["vhost"]
    ),)


def build(raw: Any) -> Settings:
    """Return typed settings for a `CQRS` dict; raise ConfigurationError if it is bad."""
    errors = [p for p in problems(raw) if not p.warning]
    if errors:
        raise ConfigurationError(f"{errors[0].msg} {errors[0].hint}")
    master, replica, relay = (_section(raw, n) for n in ("master", "replica", "relay"))
    queue = raw.get("queue")
    brokers = _brokers(raw)
    return Settings(
        broker=brokers[0],
        brokers=brokers,
        exchange=raw.get("exchange") or contract.DEFAULT_EXCHANGE,
        queue=queue,
        master=MasterSettings(
            auto_update_fields=master["CQRS_AUTO_UPDATE_FIELDS"],
            message_ttl=master["CQRS_MESSAGE_TTL"],
            correlation_function=_callable(master["correlation_function"]),
            meta_function=_callable(master["meta_function"]),
            signing_key=master["signing_key"],
            capture=master["capture"],
        ),
        replica=ReplicaSettings(
            max_retries=replica["CQRS_MAX_RETRIES"],
            retry_delay=replica["CQRS_RETRY_DELAY"],
            query_timeout=replica["CQRS_QUERY_TIMEOUT"],
            delay_queue_max_size=replica["delay_queue_max_size"],
            dead_letter_queue=replica["dead_letter_queue"] or f"dead_letter_{queue}",
            dead_message_ttl=replica["dead_message_ttl"],
            batch_size=replica["batch_size"],
            prefetch_count=replica["prefetch_count"],
            tombstone_retention=replica["tombstone_retention"],
            max_body_size=replica["max_body_size"],
            max_depth=replica["max_depth"],
            metrics_port=replica["metrics_port"],
            trusted_keys=replica["trusted_keys"],
            signatures=replica["signatures"],
        ),
        relay=RelaySettings(**relay),
    )


def relay_config(settings: Settings | None = None, **overrides: Any) -> engine.Config:
    """Return the relay's configuration from the `CQRS['relay']` settings.

    `overrides` that are not None replace its fields (batch_size, poll_interval, ...).
    """
    relay = (settings or get()).relay
    names = [field.name for field in dataclasses.fields(engine.Config)]
    values = {name: getattr(relay, name) for name in names if hasattr(relay, name)}
    values.update({key: value for key, value in overrides.items() if value is not None})
    return engine.Config(**values)


_last: tuple[Any, Settings] | None = None  # (copy of the dict read, its settings)


def get() -> Settings:
    """Return the project's validated `CQRS` settings, as the dict stands now."""
    global _last
    raw = getattr(django_settings, "CQRS", {})
    last = _last
    if last is not None and last[0] == raw:
        return last[1]
    result = build(raw)
    _last = (_copy(raw), result)
    return result


def _copy(value: Any) -> Any:
    """Copy the dicts and lists of a settings value; keep other objects as they are.

    Comparing with this copy sees any change made in place, while functions and other
    objects compare by identity.
    """
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_copy(item) for item in value)
    return value


def _reset(*, setting: str, **kwargs: Any) -> None:
    global _last
    if setting == "CQRS":
        _last = None


setting_changed.connect(_reset)
