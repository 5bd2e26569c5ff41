"""The models the fault suite writes on the master and checks on the replica."""

from django.db import models

from cqrs_outbox.mixins import MasterMixin, ReplicaMixin


class Item(MasterMixin, models.Model):
    CQRS_ID = "chaos_item"

    name = models.CharField(max_length=100)
    counter = models.IntegerField(default=0)
    note = models.TextField(default="", blank=True)


class ItemCopy(ReplicaMixin, models.Model):
    CQRS_ID = "chaos_item"

    id = models.BigIntegerField(primary_key=True)
    # Wide, as replicas may make it: holds a forged revision of 2**40 (the repair test).
    cqrs_revision = models.BigIntegerField()
    name = models.CharField(max_length=100)
    counter = models.IntegerField()
    note = models.TextField(blank=True)
