"""The documentation names only commands, flags, settings and modules that exist, and
names them all.

The documentation is the README and the site's pages (docs/*.md). Commands are compared
with the management commands the `cqrs_outbox` app registers (the Commands page documents
every one), flags with each command's own `--help`, settings with `cqrs_outbox.conf` (the
Settings page lists every key with its real default), dotted paths with what imports.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib
import io
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
from django.core.management import get_commands, load_command_class
from django.utils.module_loading import import_string

from cqrs_outbox import conf, mixins
from cqrs_outbox.models import OutboxEvent

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "docs").glob("*.md"))
# Everything the project says of itself: the README and every page of the site.
DOCS = "\n".join(path.read_text() for path in [ROOT / "README.md", *PAGES])
APP = "cqrs_outbox"
CODE_SPAN = re.compile(r"`([^`\n]+)`")
SETTING_PATH = re.compile(r"CQRS\['(\w+)'\](?:\['(\w+)'\])?")
COMMAND_HEADING = re.compile(r"^## `([^`]+)`", re.M)
FLAG = re.compile(r"(?<![\w-])(--?[a-zA-Z][\w-]*)")
DOTTED = re.compile(r"(?<![\w/.-])((?:cqrs_outbox|relay)(?:\.\w+)+)")
CHECK_ID = re.compile(r"^[EW]\d{3}$")
SETTINGS_ROW = re.compile(r"^\| `(CQRS\[[^`]+\])` \| `([^`]+)` \|", re.M)
ENV_READ = r"""(?:environ(?:\.get|\.setdefault)?\(|environ\[|getenv\()\s*["']{}["']"""
SOURCE_DIRS = ["cqrs_outbox", "relay", "examples", "tests", "bench"]


def page(name: str) -> str:
    """Return the text of the site's page docs/<name>.md."""
    path = ROOT / "docs" / f"{name}.md"
    assert path.exists(), f"the site has no page {name}.md"
    return path.read_text()


@cache
def registered() -> set[str]:
    return {name for name, app in get_commands().items() if app == APP}


@cache
def source_text(*dirs: str) -> str:
    files = [p for d in dirs for p in sorted((ROOT / d).rglob("*.py"))]
    return "\n".join(p.read_text() for p in files)


@cache
def help_text(command: str) -> str:
    if command == "python -m relay":
        run = subprocess.run(
            [sys.executable, "-m", "relay", "--help"], capture_output=True, text=True, timeout=60
        )
        return run.stdout
    parser = load_command_class(APP, command).create_parser("manage.py", command)
    text = parser.format_help()
    for names in re.findall(r"\{([a-z][\w-]*(?:,[a-z][\w-]*)+)\}", text):
        for name in names.split(","):
            text += subcommand_help(parser, name)
    return text


def subcommand_help(parser: argparse.ArgumentParser, name: str) -> str:
    """Return the `--help` text of one subcommand (`cqrs_dead_letters dump --help`)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        parser.parse_args([name, "--help"])
    return out.getvalue()


def command_sections() -> list[tuple[str, str]]:
    """Return (command, text) for each `## \\`command\\`` of the Commands page."""
    text = page("commands")
    parts = COMMAND_HEADING.split(text)
    return list(zip(parts[1::2], parts[2::2], strict=True))


def all_setting_paths() -> set[tuple[str, str | None]]:
    paths = {(name, None) for name in conf.TOP_KEYS}
    return paths | {(s, k) for s, keys in conf.SECTION_KEYS.items() for k in keys}


def known_setting_paths() -> set[tuple[str, str | None]]:
    return all_setting_paths() | {(name, None) for name in [*conf.SECTION_KEYS, *conf.IGNORED_KEYS]}


def key_of(section_name: str, key: str | None) -> conf.Key:
    if key is None:
        return conf.TOP_KEYS[section_name]
    return conf.SECTION_KEYS[section_name][key]


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", DOCS, re.M | re.S)


def cqrs_dict_keys(tree: ast.AST) -> set[tuple[str, str | None]]:
    """Return the setting paths of every `CQRS = {...}` literal in `tree`."""
    found: set[tuple[str, str | None]] = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)):
            continue
        if not any(isinstance(t, ast.Name) and t.id == "CQRS" for t in node.targets):
            continue
        for key, value in zip(node.value.keys, node.value.values, strict=True):
            assert isinstance(key, ast.Constant), "CQRS keys must be literals"
            found.add((key.value, None))
            if key.value in conf.SECTION_KEYS and isinstance(value, ast.Dict):
                found |= {(key.value, k.value) for k in value.keys if isinstance(k, ast.Constant)}
    return found


# Commands.


def test_docs__names_only_registered_commands() -> None:
    named = set(re.findall(r"manage\.py (cqrs_\w+)", DOCS))
    named |= {name for name, _ in command_sections() if name.startswith("cqrs_")}
    assert named, "the documentation names no command"
    assert named <= registered(), f"not registered: {sorted(named - registered())}"


def test_docs__documents_every_registered_command() -> None:
    documented = {name for name, _ in command_sections()}
    assert registered() <= documented, f"undocumented: {sorted(registered() - documented)}"


@pytest.mark.parametrize("command", [name for name, _ in command_sections()])
def test_docs__every_flag_of_a_command_exists(command: str) -> None:
    text = dict(command_sections())[command]
    help_ = help_text(command)
    assert help_, f"{command} --help printed nothing"
    for span in CODE_SPAN.findall(text):
        if not (span.startswith("-") or span.startswith(command)):
            continue
        for flag in FLAG.findall(span.removeprefix(command)):
            assert re.search(rf"(?<![\w-]){re.escape(flag)}\b", help_), f"{command}: {flag}"


def test_docs__other_cqrs_names_exist_in_the_code() -> None:
    source = source_text("cqrs_outbox", "relay")
    for name in set(re.findall(r"\b(cqrs_\w+)", DOCS)) - registered():
        assert re.search(rf"\b{name}\b", source), f"{name} appears nowhere in the code"


# Settings.


def test_docs__setting_paths_exist() -> None:
    known = known_setting_paths()
    named = {(a, b or None) for a, b in SETTING_PATH.findall(DOCS)}
    assert named, "the documentation names no setting"
    assert named <= known, f"unknown settings: {sorted(named - known, key=str)}"


def test_docs__documents_every_setting() -> None:
    named = {(a, b or None) for a, b in SETTING_PATH.findall(page("settings"))}
    missing = all_setting_paths() - named
    assert not missing, f"undocumented settings: {sorted(missing, key=str)}"


def test_docs__settings_table_gives_the_real_defaults() -> None:
    rows = SETTINGS_ROW.findall(page("settings"))
    assert len(rows) >= len(all_setting_paths())
    for path, default in rows:
        section_name, key = SETTING_PATH.fullmatch(path).groups()
        expected = key_of(section_name, key or None).default
        assert ast.literal_eval(default) == expected, f"{path}: the Settings page says {default}"


def test_docs__python_examples_parse_and_use_known_settings() -> None:
    known = known_setting_paths()
    blocks = python_blocks()
    assert blocks
    for block in blocks:
        used = cqrs_dict_keys(ast.parse(block))
        assert used <= known, f"unknown settings in an example: {sorted(used - known, key=str)}"


def test_docs__uppercase_cqrs_names_exist() -> None:
    section_keys = {k for keys in conf.SECTION_KEYS.values() for k in keys}
    source = source_text(*SOURCE_DIRS) + (ROOT / "Makefile").read_text()
    for name in set(re.findall(r"\b(CQRS_[A-Z_]+)\b", DOCS)):
        ok = (
            name in section_keys
            or hasattr(mixins.RawMasterMixin, name)
            or hasattr(mixins.ReplicaMixin, name)
            or re.search(ENV_READ.format(name), source)
            or re.search(rf"\b{name}=", source)
        )
        assert ok, f"{name} is neither a setting, a model attribute nor a variable read"


# Modules and files.


def celery_task_names() -> set[str]:
    from cqrs_outbox import tasks

    return {v.name for v in vars(tasks).values() if hasattr(v, "delay") and hasattr(v, "name")}


def logger_names() -> set[str]:
    """Loggers the package names outright (`logging.getLogger("...")`), not modules."""
    import cqrs_outbox

    package = Path(cqrs_outbox.__file__).parent
    return {name for source in package.rglob("*.py")
            for name in re.findall(r'getLogger\("([\w.]+)"\)', source.read_text())}


def test_docs__dotted_paths_import() -> None:
    permissions = {f"{APP}.{codename}" for codename, _ in OutboxEvent._meta.permissions}
    skipped = permissions | celery_task_names() | logger_names()
    for path in set(DOTTED.findall(DOCS)) - skipped:
        if CHECK_ID.match(path.rsplit(".", 1)[1]) or path.endswith(".py"):
            continue
        try:
            importlib.import_module(path)
        except ImportError:
            import_string(path)


def test_docs__check_ids_exist() -> None:
    source = source_text("cqrs_outbox")
    for check_id in set(re.findall(r"\bcqrs_outbox\.[EW]\d{3}\b", DOCS)):
        assert f'"{check_id}"' in source, check_id


def test_docs__named_files_exist() -> None:
    paths = re.findall(r"`((?:bench|examples|tests|relay|cqrs_outbox|\.ci)/[\w./-]*)`", DOCS)
    assert paths
    for path in paths:
        assert (ROOT / path).exists(), path

