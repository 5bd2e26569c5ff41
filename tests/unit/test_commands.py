"""Every cqrs_* command turns a library error into one line and exit status 1 the same way."""

import io

import pytest
from django.core.management import find_commands, load_command_class

import cqrs_outbox.management
from cqrs_outbox.core.errors import ConfigurationError, DatabaseUnavailable
from cqrs_outbox.management.commands import _common

COMMANDS = sorted(find_commands(cqrs_outbox.management.__path__[0]))


def test_commands__there_are_the_cqrs_commands_to_check():
    assert "cqrs_relay" in COMMANDS and "cqrs_consume" in COMMANDS and len(COMMANDS) >= 13


@pytest.mark.parametrize("name", COMMANDS)
def test_commands__each_derives_from_the_base_command(name):
    assert isinstance(load_command_class("cqrs_outbox", name), _common.CQRSCommand)


class _Failing(_common.CQRSCommand):
    error: Exception = ConfigurationError("CQRS['url'] is not an AMQP URL")

    def run(self, options):
        raise self.error


@pytest.mark.parametrize(
    "error",
    [
        ConfigurationError("CQRS['url'] is not an AMQP URL"),
        DatabaseUnavailable("database 'default' is unreachable"),
    ],
)
def test_base_command__a_library_error_is_one_line_and_exit_status_1(error):
    out, err = io.StringIO(), io.StringIO()
    command = _Failing(stdout=out, stderr=err)
    command.error = error
    with pytest.raises(SystemExit) as exit_:
        command.run_from_argv(["manage.py", "cqrs_failing"])
    assert exit_.value.code == 1
    assert err.getvalue().strip().splitlines() == [f"CommandError: {error}"]
    assert out.getvalue() == ""


def test_base_command__progress_bar_is_none_when_nobody_watches(capsys):
    command = _Failing()
    with command.progress_bar({"progress": False}, lambda: 3) as bar:
        pass
    assert bar is None
    assert capsys.readouterr().err == ""
