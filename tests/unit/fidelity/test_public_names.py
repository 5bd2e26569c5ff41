"""Every import path a user may hold keeps importing: django-cqrs's, ours at the top of the
app, and every `from cqrs_outbox... import ...` and `cqrs_outbox.x.y` the README and the
docs show. A move inside the package that breaks one of them fails here."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# django-cqrs's modules and names, at the paths a service switching over imports them.
DJANGO_CQRS_PATHS = {
    "cqrs_outbox.mixins": ["ALL_BASIC_FIELDS", "MasterMixin", "RawMasterMixin",
                           "RawReplicaMixin", "ReplicaMixin"],
    "cqrs_outbox.managers": ["MasterManager", "ReplicaManager"],
    "cqrs_outbox.metas": ["MasterMeta", "ReplicaMeta"],
    "cqrs_outbox.signals": ["MasterSignals", "post_bulk_create", "post_update"],
    "cqrs_outbox.admin": ["CQRSAdminMasterSyncMixin"],
    "cqrs_outbox.utils": ["bulk_relate_cqrs_serialization"],
}
# Our own public names, as the README and the docs teach them.
OUR_PATHS = {
    "cqrs_outbox.testing": ["capture_events"],
    "cqrs_outbox.tasks": ["drain_outbox"],
    "cqrs_outbox.models": ["OutboxEvent", "Tombstone"],
    "cqrs_outbox.registry": ["MasterRegistry", "ReplicaRegistry"],
    "relay.engine": ["Relay", "Config"],
    "relay.cli": ["main"],
}
# Dotted names in the pages that are not Python paths: permissions, logger names,
# Celery task names, tables and metrics.
NOT_PATHS = {"cqrs_outbox.replay_outboxevent", "cqrs_outbox.drain_outbox",
             "cqrs_outbox.replica.status"}

FROM_IMPORT = re.compile(r"^\s*from ((?:cqrs_outbox|relay)[\w.]*) import ([\w, ]+)$", re.M)
DOTTED = re.compile(r"`((?:cqrs_outbox|relay)(?:\.\w+)+)`")
CHECK_ID = re.compile(r"\.[EWI]\d{3}$")  # system check ids: cqrs_outbox.E001


def _page_imports() -> list[tuple[str, str]]:
    found = set()
    for page in PAGES:
        for module, names in FROM_IMPORT.findall(page.read_text()):
            found.update((module, name.strip()) for name in names.split(",") if name.strip())
    return sorted(found)


def _page_paths() -> list[str]:
    found = set()
    for page in PAGES:
        found.update(p for p in DOTTED.findall(page.read_text()) if not CHECK_ID.search(p))
    return sorted(found - NOT_PATHS)


@pytest.mark.parametrize(("module", "names"), sorted({**DJANGO_CQRS_PATHS, **OUR_PATHS}.items()))
def test_public_paths__import(module, names):
    imported = importlib.import_module(module)
    assert [name for name in names if not hasattr(imported, name)] == []


def test_django_cqrs_paths__the_same_modules_django_cqrs_has():
    dj_cqrs = pytest.importorskip("dj_cqrs")
    for module in DJANGO_CQRS_PATHS:
        leaf = module.rpartition(".")[2]
        importlib.import_module(f"{dj_cqrs.__name__}.{leaf}")  # theirs exists: ours mirrors it


def test_pages__show_imports_to_check():
    assert len(_page_imports()) >= 5
    assert len(_page_paths()) >= 5


@pytest.mark.parametrize(("module", "name"), _page_imports())
def test_pages__every_from_import_they_show_works(module, name):
    imported = importlib.import_module(module)
    assert hasattr(imported, name) or importlib.util.find_spec(f"{module}.{name}"), (
        f"the docs show `from {module} import {name}`, which fails")


@pytest.mark.parametrize("path", _page_paths())
def test_pages__every_dotted_path_they_name_resolves(path):
    module, _, attribute = path, "", ""
    while module:
        try:
            found = importlib.import_module(module)
            break
        except ModuleNotFoundError:
            module, _, last = module.rpartition(".")
            attribute = f"{last}.{attribute}" if attribute else last
    else:
        pytest.fail(f"the docs name `{path}`, which does not import")
    for part in filter(None, attribute.split(".")):
        assert hasattr(found, part), f"the docs name `{path}`: {module} has no {part}"
        found = getattr(found, part)
