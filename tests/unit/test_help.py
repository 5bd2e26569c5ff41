"""`--help` of `python -m relay`, `cqrs_relay` and `cqrs_consume` shows every default, and
names the environment variable behind an option that reads one.

Options come from the parsers themselves, so one added without its default in the help
fails here. An option that reads the environment is found by setting each variable the
module's source reads to a marker and seeing which option takes it.
"""

import argparse
import inspect
import re

import pytest

from cqrs_outbox import conf
from cqrs_outbox.management.commands import cqrs_consume, cqrs_relay
from relay import cli

# Django's own options (--verbosity, --settings, ...) are Django's to describe.
DJANGO_OPTIONS = {"--version", "--verbosity", "--settings", "--pythonpath", "--traceback",
                  "--no-color", "--force-color", "--skip-checks", "--help"}


def _options(parser):
    for action in parser._actions:
        long = max(action.option_strings, key=len, default="")
        if long and long not in DJANGO_OPTIONS:
            yield long, action


def _help(parser, action):
    return " ".join(parser._get_formatter()._expand_help(action).split())


def _shown(value):
    if isinstance(value, float) and value.is_integer():
        return (f"{value:g}", str(value))
    return (str(value),)


def _parsers():
    return {
        "python -m relay": cli.parser(),
        "cqrs_relay": cqrs_relay.Command().create_parser("manage.py", "cqrs_relay"),
        "cqrs_consume": cqrs_consume.Command().create_parser("manage.py", "cqrs_consume"),
    }


@pytest.mark.parametrize("name", ["python -m relay", "cqrs_relay", "cqrs_consume"])
def test_help__every_option_says_its_default(name):
    parser = _parsers()[name]
    checked = 0
    for option, action in _options(parser):
        text = _help(parser, action)
        flag = isinstance(action, argparse._StoreTrueAction)
        if flag and "default" not in text.lower():
            assert option in {"--once", "--status"}, f"{name} {option}: {text!r}"
            continue  # an action to take, not a setting with a default
        assert "default" in text.lower(), f"{name} {option} hides its default: {text!r}"
        if action.default not in (None, False, [], "") and "$" not in text:
            assert any(v in text for v in _shown(action.default)), (
                f"{name} {option}: default {action.default!r} not in {text!r}"
            )
        checked += 1
    assert checked >= 8


@pytest.mark.parametrize("name,section,option,key", [
    ("cqrs_relay", "relay", "--batch-size", "batch_size"),
    ("cqrs_relay", "relay", "--poll-interval", "poll_interval"),
    ("cqrs_relay", "relay", "--lease-ttl", "lease_ttl"),
    ("cqrs_consume", "replica", "--batch-size", "batch_size"),
    ("cqrs_consume", "replica", "--prefetch-count", "prefetch_count"),
])
def test_help__an_option_falling_back_to_a_setting_names_it_and_its_default(
    name, section, option, key
):
    parser = _parsers()[name]
    text = _help(parser, dict(_options(parser))[option])
    assert f"CQRS['{section}']['{key}']" in text
    assert any(v in text for v in _shown(conf.SECTION_KEYS[section][key].default)), text


def test_help__the_relay_names_each_environment_variable_it_reads(monkeypatch):
    source = inspect.getsource(cli)
    variables = set(re.findall(r'\b(RELAY_[A-Z_]+)\b', source))
    assert variables >= {"RELAY_DATABASE_URL", "RELAY_BROKER_URL"}
    for variable in sorted(variables):
        monkeypatch.setenv(variable, f"marker-{variable}")
    parser = cli.parser()
    args = parser.parse_args([])
    options = dict(_options(parser))
    readers = {
        option: variable for variable in variables for option, action in options.items()
        if getattr(args, action.dest) == f"marker-{variable}"
    }
    readers.setdefault("--broker-url", "RELAY_BROKER_URL")  # read when --broker-url is absent
    for option, variable in readers.items():
        text = _help(parser, options[option])
        assert f"${variable}" in text, f"{option} reads {variable}: {text!r}"
        assert f"marker-{variable}" not in text  # a URL's password never shows in help
