"""Run the scenario on django-cqrs and print what it would publish, encoded as it encodes."""

import os
import sys

import django
import ujson  # django-cqrs's own encoder, so the forms are the wire's

os.environ["DJANGO_SETTINGS_MODULE"] = "tests.integration.master.djcqrs_peer.settings"
django.setup()

from django.core.management import call_command  # noqa: E402

from tests.integration.master.djcqrs_peer import capture, models, scenario  # noqa: E402

call_command("migrate", run_syncdb=True, verbosity=0)
scenario.run(models)
sys.stdout.write(ujson.dumps(capture.PRODUCED))
