"""The master and replica sides of the app never import each other; they share the core.

Imports are read from the source with `ast`, lazy ones inside functions included, so an
import that only runs on some path is caught as surely as one at the top of a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import cqrs_outbox

PROJECT = Path(cqrs_outbox.__file__).resolve().parent.parent
SIDES = ("cqrs_outbox.master", "cqrs_outbox.replica")

# What the sides may import from the project outside their own package: the whole
# allowed list lives here. SHARED is for both sides: the Django-free core, and the
# app-wide modules that belong to neither side.
SHARED = (
    "cqrs_outbox.core",
    "cqrs_outbox.conf",
    "cqrs_outbox.models",
    "cqrs_outbox.progress",
    "cqrs_outbox.registry",
    "cqrs_outbox.signing",
    "cqrs_outbox.tracing",
)
ONE_SIDE = {
    # The outbox writer and the admin reach the outbox table through the relay's store.
    "cqrs_outbox.master": ("cqrs_outbox.outbox_db", "cqrs_outbox.utils", "relay.store"),
    # The consumer's probes and metrics are the relay's, with the replica's figures.
    "cqrs_outbox.replica": ("relay.health", "relay.metrics"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, is_package: bool = False) -> set[str]:
    """Return every project module `source` imports, lazily or not.

    `from pkg import name` counts as `pkg.name` when that is a module of the project, and
    as `pkg` otherwise.
    """
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_package)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if _is_module(candidate) else base)
    return {name for name in found if name.split(".")[0] in ("cqrs_outbox", "relay")}


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".")
    package = package if is_package else package[:-1]
    package = package[: len(package) - node.level + 1]
    return ".".join(package + ([node.module] if node.module else []))


def _is_module(name: str) -> bool:
    path = PROJECT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _within(name: str, prefixes: tuple[str, ...] | list[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _sources(package: str) -> list[Path]:
    return sorted(PROJECT.joinpath(*package.split(".")).rglob("*.py"))


def _imports_of(path: Path) -> set[str]:
    return imported_modules(path.read_text(), module_name(path), path.name == "__init__.py")


@pytest.mark.parametrize("side", SIDES)
def test_layout__a_side_imports_only_itself_and_what_it_may_share(side):
    allowed = (side, *SHARED, *ONE_SIDE[side])
    strays = {
        f"{module_name(path)} imports {name}"
        for path in _sources(side)
        for name in _imports_of(path)
        if not _within(name, allowed) and name != "cqrs_outbox"
    }
    assert not strays, sorted(strays)


@pytest.mark.parametrize("side", SIDES)
def test_layout__the_sides_have_modules_to_check(side):
    assert len(_sources(side)) > 3


def test_layout__shared_modules_import_neither_side():
    shared = [name for name in SHARED + ONE_SIDE[SIDES[0]] + ONE_SIDE[SIDES[1]]
              if name.startswith("cqrs_outbox.") and _is_module(name)]
    strays = {
        f"{name} imports {imported}"
        for name in shared
        for path in _paths_of(name)
        for imported in _imports_of(path)
        if _within(imported, SIDES)
    }
    assert not strays, sorted(strays)


def _paths_of(name: str) -> list[Path]:
    path = PROJECT.joinpath(*name.split("."))
    return _sources(name) if path.is_dir() else [path.with_suffix(".py")]


def test_imported_modules__finds_lazy_and_relative_imports():
    source = (
        "from cqrs_outbox import conf\n"
        "def handler():\n"
        "    from cqrs_outbox.master import outbox\n"
        "    import relay.store\n"
        "    from . import mapping\n"
        "    from ..registry import ReplicaRegistry\n"
    )
    found = imported_modules(source, "cqrs_outbox.replica.apply")
    assert found == {
        "cqrs_outbox.conf",
        "cqrs_outbox.master.outbox",
        "relay.store",
        "cqrs_outbox.replica.mapping",
        "cqrs_outbox.registry",
    }
