"""The core reads `expires` as Django's parse_datetime does, without Django."""

import pytest
from django.utils.dateparse import parse_datetime as django_parse

from cqrs_outbox.core import wire

TEXTS = [
    "2026-01-02T03:04:05+00:00", "2026-01-02 03:04:05.123456+00:00", "2026-01-02T03:04:05Z",
    "2026-01-02T03:04", "2026-1-2 3:4:5", "2026-01-02T03:04:05,25", "2026-01-02T03:04:05+0530",
    "2026-01-02T03:04:05-02", "2026-01-02T03:04:05.1234567", "2026-01-02", "2026-01-02T03",
    "tomorrow", "", "2026-01-02T03:04:05 +01:00", "20260102T030405",
]


@pytest.mark.parametrize("text", TEXTS)
def test_parse_datetime__agrees_with_django(text):
    assert wire.parse_datetime(text) == django_parse(text)


@pytest.mark.parametrize("text", ["2026-02-30T10:00:00", "2026-01-02T25:00"])
def test_parse_datetime__impossible_dates_raise_as_in_django(text):
    with pytest.raises(ValueError):
        django_parse(text)
    with pytest.raises(ValueError):
        wire.parse_datetime(text)
