"""Every model change ships with its migration."""

import io

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_models__have_no_missing_migrations():
    out = io.StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    except SystemExit as exc:
        pytest.fail(f"missing migrations (exit {exc.code}):\n{out.getvalue()}")
