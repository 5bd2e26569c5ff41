"""Abstract replica models are registered, as django-cqrs registers them."""

import pytest
from dj_cqrs.mixins import ReplicaMixin as TheirReplicaMixin
from dj_cqrs.registries import ReplicaRegistry as TheirRegistry
from django.db import models
from django.test.utils import isolate_apps

from cqrs_outbox.mixins import ReplicaMixin
from cqrs_outbox.registry import ReplicaRegistry
from tests.testproject.replica.models import NoTableRef


@pytest.fixture
def registries():
    """Keep models a test defines out of both registries afterwards."""
    ours, theirs = dict(ReplicaRegistry.models), dict(TheirRegistry.models)
    yield
    ReplicaRegistry.models.clear()
    ReplicaRegistry.models.update(ours)
    TheirRegistry.models.clear()
    TheirRegistry.models.update(theirs)


def test_abstract_replica__registered_by_its_cqrs_id():
    assert NoTableRef._meta.abstract
    assert ReplicaRegistry.get_model_by_cqrs_id("no_table") is NoTableRef


@isolate_apps("tests.testproject.replica")
def test_abstract_replica__registered_by_both_libraries_alike(registries):
    class Ours(ReplicaMixin):
        CQRS_ID = "abstract_both"
        CQRS_NO_DB_OPERATIONS = True

        class Meta:
            abstract = True
            app_label = "replica"

    class Theirs(TheirReplicaMixin):
        CQRS_ID = "abstract_both"
        CQRS_NO_DB_OPERATIONS = True

        class Meta:
            abstract = True
            app_label = "replica"

    assert TheirRegistry.get_model_by_cqrs_id("abstract_both") is Theirs
    assert ReplicaRegistry.get_model_by_cqrs_id("abstract_both") is Ours


@isolate_apps("tests.testproject.replica")
def test_abstract_base_without_cqrs_id__is_only_a_base(registries):
    before = dict(ReplicaRegistry.models)

    class Base(ReplicaMixin):
        name = models.CharField(max_length=10)

        class Meta:
            abstract = True
            app_label = "replica"

    assert ReplicaRegistry.models == before

    class Concrete(Base):
        CQRS_ID = "concrete_of_base"
        id = models.IntegerField(primary_key=True)

        class Meta:
            app_label = "replica"

    assert ReplicaRegistry.get_model_by_cqrs_id("concrete_of_base") is Concrete


@isolate_apps("tests.testproject.replica")
def test_concrete_subclass_of_abstract_replica__takes_over_its_cqrs_id(registries):
    class Abstract(ReplicaMixin):
        CQRS_ID = "inherited_id"

        class Meta:
            abstract = True
            app_label = "replica"

    class Concrete(Abstract):
        id = models.IntegerField(primary_key=True)

        class Meta:
            app_label = "replica"

    assert ReplicaRegistry.get_model_by_cqrs_id("inherited_id") is Concrete
    assert not [d for d in ReplicaRegistry.duplicates if d[0] == "inherited_id"]
