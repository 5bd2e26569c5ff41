"""Every misconfiguration is a system-check message with an id and a hint."""

import pytest
from django.core import checks
from django.db import models
from django.test.utils import isolate_apps, override_settings

from cqrs_outbox import checks as cqrs_checks
from cqrs_outbox import conf
from cqrs_outbox.core.errors import ConfigurationError
from cqrs_outbox.metas import MasterMeta, ReplicaMeta
from cqrs_outbox.mixins import RawMasterMixin, ReplicaMixin
from cqrs_outbox.registry import MasterRegistry, ReplicaRegistry


def _ids(messages):
    return sorted({m.id for m in messages})


def _settings_messages(value):
    with override_settings(CQRS=value):
        return cqrs_checks.check_settings()


def test_valid_settings__no_messages():
    assert _settings_messages({"url": "amqps://u:p@broker:5671/prod", "queue": "q"}) == []


def test_missing_cqrs__error_with_hint(settings):
    del settings.CQRS
    [message] = cqrs_checks.check_settings()
    assert message.id == "cqrs_outbox.E024"
    assert "CQRS" in message.hint


def test_cqrs_not_a_dict__error():
    [message] = _settings_messages(["amqp://x"])
    assert message.id == "cqrs_outbox.E001"


@pytest.mark.parametrize(
    "url", ["http://broker", "amqp://", "redis://h:6379", "amqp://host:notaport/"]
)
def test_bad_url__error_naming_the_setting(url):
    messages = _settings_messages({"url": url, "queue": "q"})
    assert _ids(messages) == ["cqrs_outbox.E006"]
    assert "CQRS['url']" in messages[0].msg
    assert "amqp://" in messages[0].hint


def test_password_never_in_the_message():
    messages = _settings_messages({"url": "http://u:s3cret@host/", "queue": "q"})
    assert messages and all("s3cret" not in m.msg + m.hint for m in messages)


def test_unknown_key__error_listing_known_keys():
    messages = _settings_messages({"url": "amqp://h/", "queue": "q", "exchnage": "x"})
    assert _ids(messages) == ["cqrs_outbox.E003"]
    assert "exchange" in messages[0].hint


def test_unknown_section_key__error():
    messages = _settings_messages({"queue": "q", "master": {"CQRS_MESSAGE_TTLL": 5}})
    assert _ids(messages) == ["cqrs_outbox.E003"]
    assert "CQRS['master']['CQRS_MESSAGE_TTLL']" in messages[0].msg


def test_section_not_a_dict__error():
    assert _ids(_settings_messages({"queue": "q", "replica": 5})) == ["cqrs_outbox.E002"]


@pytest.mark.parametrize(
    "section, key, value",
    [
        ("master", "CQRS_AUTO_UPDATE_FIELDS", "yes"),
        ("replica", "dead_message_ttl", 0),
        ("replica", "batch_size", 1.5),
        ("relay", "batch_size", 0),
    ],
)
def test_wrong_type_or_range__error_with_hint(section, key, value):
    messages = _settings_messages({"queue": "q", section: {key: value}})
    assert _ids(messages) == ["cqrs_outbox.E004"]
    assert key in messages[0].msg and messages[0].hint


def test_unimportable_function__error():
    messages = _settings_messages({"queue": "q", "master": {"meta_function": "no.such.func"}})
    assert _ids(messages) == ["cqrs_outbox.E005"]


def test_django_cqrs_transport__warning_saying_what_to_do():
    messages = _settings_messages(
        {"transport": "dj_cqrs.transport.RabbitMQTransport", "queue": "q"}
    )
    assert _ids(messages) == ["cqrs_outbox.W001"]
    assert isinstance(messages[0], checks.Warning)
    assert "cqrs_relay" in messages[0].hint


def test_build__raises_configuration_error_naming_the_key():
    with pytest.raises(ConfigurationError, match=r"CQRS\['port'\]"):
        conf.build({"port": "5672"})


def test_build__parses_vhost_and_tls():
    settings = conf.build({"url": "amqps://user:p%40ss@mq.example:5671/orders"})
    assert settings.broker.scheme == "amqps"
    assert settings.broker.vhost == "orders"
    assert settings.broker.password == "p@ss"
    assert "p@ss" not in settings.broker.safe_url and "p%40ss" not in settings.broker.safe_url


@pytest.fixture
def registries():
    """Keep models defined by a test out of the project's registries afterwards."""
    saved = {r: (dict(r.models), list(r.duplicates)) for r in (MasterRegistry, ReplicaRegistry)}
    yield
    for registry, (known, duplicates) in saved.items():
        registry.models.clear()
        registry.models.update(known)
        registry.duplicates[:] = duplicates


def _model_messages():
    return [m for m in cqrs_checks.check_models() if m.id.startswith("cqrs_outbox.")]


@isolate_apps("tests.testproject.master")
def test_master_without_cqrs_id__error(registries):
    class NoId(RawMasterMixin):
        class Meta:
            app_label = "master"

        name = models.CharField(max_length=10)

    MasterMeta.register(NoId)
    messages = [m for m in _model_messages() if m.obj is NoId]
    assert _ids(messages) == ["cqrs_outbox.E010"]
    assert "CQRS_ID" in messages[0].hint


@isolate_apps("tests.testproject.master")
def test_duplicate_cqrs_id__error_naming_both_models(registries):
    class First(RawMasterMixin):
        class Meta:
            app_label = "master"

        CQRS_ID = "dup_id"

    class Second(RawMasterMixin):
        class Meta:
            app_label = "master"

        CQRS_ID = "dup_id"

    MasterMeta.register(First)
    MasterMeta.register(Second)
    [message] = [m for m in _model_messages() if m.id == "cqrs_outbox.E011"]
    assert "First" in message.msg and "Second" in message.msg


@isolate_apps("tests.testproject.master")
def test_cqrs_fields_without_pk__error(registries):
    class NoPk(RawMasterMixin):
        class Meta:
            app_label = "master"

        CQRS_ID = "no_pk_fields"
        CQRS_FIELDS = ["name"]
        name = models.CharField(max_length=10)

    MasterMeta.register(NoPk)
    messages = [m for m in _model_messages() if m.obj is NoPk]
    assert _ids(messages) == ["cqrs_outbox.E013"]
    assert "'id'" in messages[0].hint


@isolate_apps("tests.testproject.master")
def test_cqrs_fields_unknown_name__error(registries):
    class Unknown(RawMasterMixin):
        class Meta:
            app_label = "master"

        CQRS_ID = "unknown_fields"
        CQRS_FIELDS = ["id", "nmae"]
        name = models.CharField(max_length=10)

    MasterMeta.register(Unknown)
    messages = [m for m in _model_messages() if m.obj is Unknown]
    assert _ids(messages) == ["cqrs_outbox.E012"]
    assert "nmae" in messages[0].msg and "name" in messages[0].hint


@isolate_apps("tests.testproject.master")
def test_fields_with_serializer_and_bad_serializer__errors(registries):
    class Both(RawMasterMixin):
        class Meta:
            app_label = "master"

        CQRS_ID = "both"
        CQRS_FIELDS = ["id"]
        CQRS_SERIALIZER = "no.such.Serializer"

    MasterMeta.register(Both)
    assert _ids([m for m in _model_messages() if m.obj is Both]) == [
        "cqrs_outbox.E014",
        "cqrs_outbox.E015",
    ]


@isolate_apps("tests.testproject.master")
def test_bad_tracked_fields__error(registries):
    class BadTracked(RawMasterMixin):
        class Meta:
            app_label = "master"

        CQRS_ID = "bad_tracked"
        CQRS_TRACKED_FIELDS = ["missing"]

    MasterMeta.register(BadTracked)
    assert _ids([m for m in _model_messages() if m.obj is BadTracked]) == ["cqrs_outbox.E012"]


@isolate_apps("tests.testproject.replica")
def test_replica_without_queue__error(registries, settings):
    settings.CQRS = {"url": "amqp://h/"}

    class Copy(ReplicaMixin):
        class Meta:
            app_label = "replica"

        CQRS_ID = "copy_without_queue"
        id = models.IntegerField(primary_key=True)

    messages = cqrs_checks.check_settings()
    assert "cqrs_outbox.E016" in _ids(messages)


@isolate_apps("tests.testproject.replica")
def test_replica_mapping_to_missing_field__error(registries):
    class Mapped(ReplicaMixin):
        class Meta:
            app_label = "replica"

        CQRS_ID = "mapped_bad"
        CQRS_MAPPING = {"id": "id", "name": "title"}
        id = models.IntegerField(primary_key=True)

    ReplicaMeta.register(Mapped)
    messages = [m for m in _model_messages() if m.obj is Mapped]
    assert _ids(messages) == ["cqrs_outbox.E012"]
    assert "title" in messages[0].msg
