"""A replica model's own hooks get what django-cqrs hands them, however they are declared.

Events are applied as the consumer applies them (decoded, validated, one batch) and
through the model's `cqrs_save`, against the real database.
"""

from unittest import mock

import pytest

from cqrs_outbox.mixins import ReplicaMixin
from tests.integration.replica import events as ev
from tests.testproject.replica import models

pytestmark = pytest.mark.django_db

NESTED = {"id": 5, "name": "Ann"}  # an author as a serializer nests it in its book


@pytest.fixture
def seen():
    """Collect the mapped data each hook of the test receives."""
    return []


@pytest.fixture
def nested_hooks(monkeypatch, seen):
    """Give AllFieldsRef hooks that read the author from nested data, as django-cqrs's
    own test replica `Article` does (`mapped_data['author']['id']`)."""

    def cqrs_create(cls, sync, mapped_data, previous_data=None, meta=None):
        seen.append(mapped_data)
        data = {
            "id": mapped_data["id"],
            "author_id": mapped_data["author"]["id"],
            "cqrs_revision": mapped_data["cqrs_revision"],
            "cqrs_updated": mapped_data["cqrs_updated"],
        }
        return super(models.AllFieldsRef, cls).cqrs_create(sync, data, previous_data)

    def cqrs_update(self, sync, mapped_data, previous_data=None, meta=None):
        seen.append(mapped_data)
        self.author_id = mapped_data["author"]["id"]
        self.cqrs_revision = mapped_data["cqrs_revision"]
        self.cqrs_updated = mapped_data["cqrs_updated"]
        self.save()
        return self

    monkeypatch.setattr(models.AllFieldsRef, "cqrs_create", classmethod(cqrs_create))
    monkeypatch.setattr(models.AllFieldsRef, "cqrs_update", cqrs_update)


def test_overridden_create_and_update__get_nested_data_unconverted(apply_batch, nested_hooks,
                                                                  seen):
    """django-cqrs hands `cqrs_create`/`cqrs_update` the mapped data as the master sent it.

    Its manager only renames keys (CQRS_MAPPING), drops keys the model lacks and checks
    that the required fields are there; values are not converted, so a hook may read a
    nested object the master's serializer sent for a foreign key.
    """
    assert apply_batch(ev.save("all_fields", 1, 0, author=NESTED)) == ["applied"]
    assert apply_batch(ev.save("all_fields", 1, 1, author={**NESTED, "id": 6})) == ["applied"]

    row = models.AllFieldsRef.objects.get(pk=1)
    assert (row.author_id, row.cqrs_revision) == (6, 1)
    assert [data["author"] for data in seen] == [NESTED, {**NESTED, "id": 6}]
    assert seen[0]["cqrs_updated"] == ev.UPDATED  # text, as sent


def test_overridden_create__called_directly_gets_nested_data(nested_hooks, seen):
    """django-cqrs's `Model.cqrs_save(master_data)` reaches the same hooks with the same data."""
    data = ev.save("all_fields", 2, 0, author=NESTED)["instance_data"]
    assert models.AllFieldsRef.cqrs_save(data).author_id == 5
    assert seen[0]["author"] == NESTED


def test_default_create__converts_and_refuses_what_the_column_cannot_hold(apply_batch):
    """Without hooks of the model's own, our write checks each value against its field.

    django-cqrs would hand the nested object to `Model.objects.create()`, which fails;
    ours refuses it before writing, naming the key, and dead-letters it.
    """
    [outcome] = apply_batch(ev.save("all_fields", 3, 0, author=NESTED))
    assert outcome == "bad"
    assert not models.AllFieldsRef.objects.filter(pk=3).exists()


def test_hook_as_staticmethod__is_called(apply_batch, monkeypatch, seen):
    """django-cqrs calls `model.cqrs_create(sync, mapped_data, previous_data=...)`, so a
    staticmethod taking those arguments works as a hook."""

    def create(sync, mapped_data, previous_data=None, meta=None):
        seen.append(mapped_data)
        return models.AuthorRef.objects.create(
            id=mapped_data["id"], name=mapped_data["name"].upper(),
            cqrs_revision=mapped_data["cqrs_revision"], cqrs_updated=mapped_data["cqrs_updated"],
        )

    monkeypatch.setattr(models.AuthorRef, "cqrs_create", staticmethod(create))
    assert apply_batch(ev.save("author", 1, 0, name="ann")) == ["applied"]
    assert models.AuthorRef.objects.get(pk=1).name == "ANN"
    assert len(seen) == 1


def test_hook_as_plain_function__is_called(apply_batch, monkeypatch, seen):
    """django-cqrs calls `model.cqrs_save(instance_data, previous_data=...)`: a plain
    function set on the class gets exactly those arguments."""

    def cqrs_save(master_data, previous_data=None, sync=False, meta=None):
        seen.append((master_data["id"], previous_data, sync))
        return True

    monkeypatch.setattr(models.AuthorRef, "cqrs_save", cqrs_save)
    assert apply_batch(ev.save("author", 1, 0, name="ann"), ev.sync("author", 2, 0, name="b")) \
        == ["applied", "applied"]
    assert seen == [(1, None, False), (2, None, True)]
    assert not models.AuthorRef.objects.exists()


def test_mock_on_the_mixin__patched_after_a_first_message_is_called(apply_batch, monkeypatch):
    """django-cqrs looks the handler up on each message: a test's
    `mocker.patch.object(ReplicaMixin, 'cqrs_save')` gets every later call, even after the
    model's events were already applied before the patch."""
    assert apply_batch(ev.save("author", 1, 0, name="before")) == ["applied"]

    handler = mock.MagicMock(return_value=True)
    monkeypatch.setattr(ReplicaMixin, "cqrs_save", handler)
    assert apply_batch(ev.save("author", 1, 1, name="after")) == ["applied"]

    data = ev.save("author", 1, 1, name="after")["instance_data"]
    handler.assert_called_once_with(data, previous_data=None)
    assert models.AuthorRef.objects.get(pk=1).name == "before"  # the mock wrote nothing
