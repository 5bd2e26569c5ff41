"""Two master models sharing a CQRS_ID: installed only by startup_settings, to fail."""

from django.db import models

from cqrs_outbox.mixins import MasterMixin


class First(MasterMixin):
    CQRS_ID = "author"  # also the test project's Author
    name = models.CharField(max_length=10)
