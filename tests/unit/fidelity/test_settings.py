"""Settings django-cqrs tolerates are warnings here too, and settings are read live.

django-cqrs (installed for the tests) is run on the same values as the peer: both must
accept the same values, warn on the same ones with the same phrase, and fall back to
the default.
"""

import copy
import logging

import pytest
from dj_cqrs import _validation
from django.apps import apps
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.test.utils import override_settings

from cqrs_outbox import checks as cqrs_checks
from cqrs_outbox import conf
from cqrs_outbox.mixins import ReplicaMixin
from cqrs_outbox.replica import consumer

BASE = {"url": "amqp://guest:guest@127.0.0.1:5672/%2F", "queue": "q"}

# (section, key, django-cqrs's validator, our check id, our setting getter)
TOLERATED = [
    ("master", "CQRS_MESSAGE_TTL", _validation._validate_master_message_ttl,
     "cqrs_outbox.W002", lambda s: s.master.message_ttl),
    ("replica", "CQRS_MAX_RETRIES", _validation._validate_replica_max_retries,
     "cqrs_outbox.W003", lambda s: s.replica.max_retries),
    ("replica", "CQRS_RETRY_DELAY", _validation._validate_replica_retry_delay,
     "cqrs_outbox.W004", lambda s: s.replica.retry_delay),
    ("replica", "delay_queue_max_size", _validation._validate_replica_delay_queue_max_size,
     "cqrs_outbox.W005", lambda s: s.replica.delay_queue_max_size),
]
BAD = {
    "CQRS_MESSAGE_TTL": [0, -1, 1.5, {}, {"days": 1}, "3600"],
    "CQRS_MAX_RETRIES": [-1, 1.5, {}, "5"],
    "CQRS_RETRY_DELAY": [None, -1, 1.5, {}, "2"],
    "delay_queue_max_size": [0, -1, 1.5, {}, "10"],
}
GOOD = {
    "CQRS_MESSAGE_TTL": [None, 1, 3600],
    "CQRS_MAX_RETRIES": [None, 0, 5],
    "CQRS_RETRY_DELAY": [0, 1, 30],
    "delay_queue_max_size": [None, 1, 1000],
}
CASES = [(*t, v, False) for t in TOLERATED for v in BAD[t[1]]]
CASES += [(*t, v, True) for t in TOLERATED for v in GOOD[t[1]]]


def _django_cqrs_verdict(validator, key, value, caplog):
    """Run django-cqrs's own validation on {key: value}: (warned, log message)."""
    caplog.clear()
    section = {key: value}
    with caplog.at_level(logging.WARNING, logger="django-cqrs"):
        validator(section)
    records = [r for r in caplog.records if r.name == "django-cqrs"]
    return bool(records), records[0].getMessage() if records else ""


def _our_verdict(section, key, value, caplog):
    """Build our settings from the same value: (warned, log message, settings)."""
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="cqrs_outbox.conf"):
        settings = conf.build({**BASE, section: {key: value}})
    records = [r for r in caplog.records if r.name == "cqrs_outbox.conf"]
    return bool(records), records[0].getMessage() if records else "", settings


@pytest.mark.parametrize("section, key, validator, check_id, read, value, valid", CASES,
                         ids=[f"{c[1]}={c[5]!r}" for c in CASES])
def test_tolerated_setting__warned_and_defaulted_exactly_as_django_cqrs(
        section, key, validator, check_id, read, value, valid, caplog):
    theirs, their_message = _django_cqrs_verdict(validator, key, value, caplog)
    ours, our_message, settings = _our_verdict(section, key, value, caplog)

    assert theirs is (not valid) and ours is (not valid)
    default = conf.SECTION_KEYS[section][key].default
    assert read(settings) == (value if valid else default)
    if not valid:
        # Same phrase as django-cqrs, so alerts and log searches keep matching.
        phrase = their_message.split(", using default")[0]
        assert our_message == f"{phrase}, using default {default}."


@pytest.mark.parametrize("section, key, validator, check_id, read, value, valid",
                         [c for c in CASES if not c[-1]],
                         ids=[f"{c[1]}={c[5]!r}" for c in CASES if not c[-1]])
def test_tolerated_setting__system_check_is_a_warning_with_hint(
        section, key, validator, check_id, read, value, valid):
    with override_settings(CQRS={**BASE, section: {key: value}}):
        messages = cqrs_checks.check_settings()
    assert [m.id for m in messages] == [check_id]
    [message] = messages
    assert isinstance(message, checks.Warning) and not message.is_serious()
    assert f"CQRS['{section}']['{key}']" in message.msg and "default" in message.msg
    assert message.hint.startswith("Use an integer")


def test_tolerated_setting__consumer_starts_and_replica_hooks_use_the_defaults():
    with override_settings(CQRS={**BASE, "replica": {"CQRS_RETRY_DELAY": None,
                                                     "CQRS_MAX_RETRIES": -1}}):
        worker = consumer.Consumer()
        assert worker.names.queue == "q"
        assert ReplicaMixin.get_cqrs_retry_delay(0) == conf.DEFAULT_RETRY_DELAY == 2
        assert ReplicaMixin.should_retry_cqrs(conf.DEFAULT_MAX_RETRIES - 1)
        assert not ReplicaMixin.should_retry_cqrs(conf.DEFAULT_MAX_RETRIES)


@pytest.mark.parametrize("raw", [
    {"url": "http://broker/", "queue": "q"},
    {**BASE, "master": {"CQRS_AUTO_UPDATE_FIELDS": "yes"}},
])
def test_settings_that_cannot_work__still_an_error(raw):
    with override_settings(CQRS=raw):
        messages = cqrs_checks.check_settings()
    assert messages and all(m.is_serious() for m in messages)


# Settings read live (item 7).


def test_get__sees_an_in_place_change_at_once(settings):
    settings.CQRS = {**BASE, "master": {"CQRS_MESSAGE_TTL": 3600}}
    assert conf.get().master.message_ttl == 3600
    settings.CQRS["master"]["CQRS_MESSAGE_TTL"] = 60
    assert conf.get().master.message_ttl == 60
    settings.CQRS["replica"] = {"CQRS_MAX_RETRIES": 1}
    assert conf.get().replica.max_retries == 1
    del settings.CQRS["replica"]
    assert conf.get().replica.max_retries == conf.DEFAULT_MAX_RETRIES


def test_get__follows_override_settings_and_returns_after_it():
    before = conf.get()
    with override_settings(CQRS={**BASE, "queue": "other_queue"}):
        assert conf.get().queue == "other_queue"
    assert conf.get() == before


def test_get__unchanged_dict_gives_the_same_object_and_logs_once(settings, caplog):
    settings.CQRS = {**BASE, "master": {"CQRS_MESSAGE_TTL": 0}}
    with caplog.at_level(logging.WARNING, logger="cqrs_outbox.conf"):
        first = conf.get()
        assert all(conf.get() is first for _ in range(5))
    assert len([r for r in caplog.records if r.name == "cqrs_outbox.conf"]) == 1


def test_get__function_values_compare_by_identity(settings):
    def meta_one(**kwargs):
        return {"n": 1}

    def meta_two(**kwargs):
        return {"n": 2}

    settings.CQRS = {**BASE, "master": {"meta_function": meta_one}}
    assert conf.get().master.meta_function is meta_one
    settings.CQRS["master"]["meta_function"] = meta_two
    assert conf.get().master.meta_function is meta_two


# Settings django-cqrs refuses at start-up.


def meta_without_kwargs(obj):
    return {"id": obj.pk}


def meta_with_kwargs(obj, **kwargs):
    return {"id": obj.pk}


class MetaClass:
    def __init__(self, obj=None, **kwargs):
        self.obj = obj


def _django_cqrs_refuses(raw):
    """Run django-cqrs's own validation of the master and replica sections on `raw`."""
    try:
        _validation._validate_master(copy.deepcopy(raw))  # it fills in what it read
        _validation._validate_replica(copy.deepcopy(raw))
    except AssertionError:
        return True
    return False


# (case, the CQRS dict, our check id)
REFUSED = [
    ("master-none", {**BASE, "master": None}, "cqrs_outbox.E002"),
    ("replica-none", {**BASE, "replica": None}, "cqrs_outbox.E002"),
    ("meta-function-class", {**BASE, "master": {"meta_function": MetaClass}},
     "cqrs_outbox.E030"),
    ("meta-function-without-kwargs", {**BASE, "master": {"meta_function": meta_without_kwargs}},
     "cqrs_outbox.E031"),
    ("meta-function-path-without-kwargs",
     {**BASE, "master": {"meta_function": f"{__name__}.meta_without_kwargs"}},
     "cqrs_outbox.E031"),
]


@pytest.mark.parametrize("raw, check_id", [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_refused_setting__error_with_id_and_hint_and_the_service_does_not_start(raw, check_id):
    """django-cqrs asserts on these as the models load: a master or replica section that
    is there but is None, and a meta_function that is no function or takes no **kwargs
    (it is called with obj and the event's data as keywords). Ours refuses the same with a
    system check, and raises it when Django sets up, as a meta_function that cannot take
    those keywords would otherwise fail every master save at commit."""
    assert _django_cqrs_refuses(raw)
    with override_settings(CQRS=raw):
        messages = [m for m in cqrs_checks.check_settings() if m.is_serious()]
        assert [m.id for m in messages] == [check_id]
        assert messages[0].hint
        with pytest.raises(ImproperlyConfigured, match=check_id.replace(".", r"\.")):
            apps.get_app_config("cqrs_outbox").ready()


@pytest.mark.parametrize("meta_function", [meta_with_kwargs, f"{__name__}.meta_with_kwargs"],
                         ids=["function", "dotted-path"])
def test_meta_function_taking_kwargs__accepted_as_by_django_cqrs(meta_function):
    """django-cqrs accepts a function (or its dotted path) that takes **kwargs."""
    raw = {**BASE, "master": {"meta_function": meta_function}}
    assert not _django_cqrs_refuses(raw)
    with override_settings(CQRS=raw):
        assert not [m for m in cqrs_checks.check_settings() if m.is_serious()]
        assert conf.get().master.meta_function is meta_with_kwargs
