"""The plan of the house, held against the code: which package may import which, no
import circles, dialects only in the store, one name per module, no hiding aliases.

Imports are read from the source with `ast`, lazy ones inside functions included, so an
import that only runs on some path is caught as surely as one at the top of a module.
Imports under `if TYPE_CHECKING:` never run and are left out. Every rule is a function
over {module name: source}, run on the tree and, in the tests at the bottom, on a small
made-up tree that breaks it, so each rule is seen to fail.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

import cqrs_outbox

PROJECT = Path(cqrs_outbox.__file__).resolve().parent.parent
ROOTS = ("cqrs_outbox", "relay")
MIGRATIONS = "cqrs_outbox.migrations"  # frozen history: not held to today's plan

# What each package may import from the project besides itself (the store's dialect
# modules and the core only ever import downward). Top-level modules of the app that
# are not listed here (apps, checks, admin, drain, tasks, testing, the django-cqrs import
# paths) sit above everything and may import anything.
SHARED = (  # the app's modules both sides and the operator tools use
    "cqrs_outbox.conf", "cqrs_outbox.keyring", "cqrs_outbox.models",
    "cqrs_outbox.registry", "cqrs_outbox.tracing",
)
MAY_IMPORT = {
    "cqrs_outbox.core": (),
    "cqrs_outbox.store": ("cqrs_outbox.core",),
    "relay": ("cqrs_outbox.core", "cqrs_outbox.store"),
    "cqrs_outbox.master": ("cqrs_outbox.core", "cqrs_outbox.store", *SHARED),
    "cqrs_outbox.replica": ("cqrs_outbox.core", "cqrs_outbox.store", *SHARED),
    "cqrs_outbox.ops": ("cqrs_outbox.core", "cqrs_outbox.store", "cqrs_outbox.master",
                        "cqrs_outbox.replica", *SHARED),
    # The shared modules take the relay's defaults (conf) and nothing of a side.
    **{name: ("cqrs_outbox.core", "cqrs_outbox.store", "relay", *SHARED) for name in SHARED},
}

# Where a database may be named: the store's dialects, and the replica's own queries.
DIALECT_PLACES = ("cqrs_outbox.store", "cqrs_outbox.replica.queries",
                  "cqrs_outbox.replica.queries_mysql")
DIALECT_NAMES = {"postgresql", "postgres", "mysql", "mariadb", "sqlite", "sqlite3"}

# django-cqrs's import paths: the top-level module re-exports the side modules of the
# same name, which is why those names, and only those, exist more than once.
DJANGO_CQRS_PATHS = ("admin", "managers", "metas", "mixins", "signals", "utils")


# -- reading the tree --------------------------------------------------------------------

def module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def tree_sources() -> dict[str, str]:
    """Return {module name: source} of every module of the app and the relay."""
    sources = {}
    for root in ROOTS:
        for path in sorted(PROJECT.joinpath(root).rglob("*.py")):
            name = module_name(path)
            if not _within(name, (MIGRATIONS,)):
                sources[name] = path.read_text()
    return sources


def _packages(sources: Mapping[str, str]) -> set[str]:
    return {name.rsplit(".", 1)[0] for name in sources if "." in name} | set(ROOTS)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for part in node.body for child in ast.walk(part))
    return skipped


def imported_modules(source: str, module: str, is_package: bool = False,
                     known: Iterable[str] | None = None) -> set[str]:
    """Return every project module `source` imports, lazily or not (not those under
    `if TYPE_CHECKING:`).

    `from pkg import name` counts as `pkg.name` when that is a module of the project, and
    as `pkg` otherwise.
    """
    known = set(known) if known is not None else None
    tree = ast.parse(source)
    skipped = _type_checking_nodes(tree)
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_package)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                is_module = candidate in known if known is not None else _is_module(candidate)
                found.add(candidate if is_module else base)
    return {name for name in found if name.split(".")[0] in ROOTS}


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


def _within(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def import_graph(sources: Mapping[str, str]) -> dict[str, set[str]]:
    """Return {module: the project modules it imports} for `sources`."""
    packages = _packages(sources)
    known = set(sources)
    graph = {}
    for name, source in sources.items():
        found = imported_modules(source, name, name in packages, known)
        graph[name] = {_nearest(target, known) for target in found} - {name, ""}
    return graph


def _nearest(name: str, known: set[str]) -> str:
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name


# -- the rules ---------------------------------------------------------------------------

def circles(sources: Mapping[str, str]) -> list[list[str]]:
    """Return every group of modules that import one another round in a circle."""
    graph = import_graph(sources)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(start: str) -> None:  # Tarjan's strongly connected components, iteratively
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return found


def stray_imports(sources: Mapping[str, str]) -> list[str]:
    """Return each import of a package outside what `MAY_IMPORT` lets it import."""
    strays = []
    for name, targets in import_graph(sources).items():
        owner = next((p for p in sorted(MAY_IMPORT, key=len, reverse=True)
                      if _within(name, (p,))), None)
        if owner is None:
            continue
        allowed = (owner, *MAY_IMPORT[owner])
        strays += [f"{name} imports {target}" for target in sorted(targets)
                   if not _within(target, allowed) and target != "cqrs_outbox"]
    return strays


def dialect_checks(sources: Mapping[str, str]) -> list[str]:
    """Return each place outside the store and the replica's queries that names a
    database: a `.vendor` or a dialect's name as a string."""
    found = []
    for name, source in sources.items():
        if _within(name, DIALECT_PLACES):
            continue
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Attribute) and node.attr == "vendor":
                found.append(f"{name}:{node.lineno} reads .vendor")
            elif isinstance(node, ast.Constant) and node.value in DIALECT_NAMES:
                found.append(f"{name}:{node.lineno} names {node.value!r}")
    return found


def shared_file_names(sources: Mapping[str, str]) -> list[str]:
    """Return each file name two packages share, but django-cqrs's import paths (whose
    top-level module must then only re-export)."""
    packages = _packages(sources)
    by_name: dict[str, list[str]] = {}
    for name in sources:
        if name in packages or name.endswith(".__main__"):
            continue
        by_name.setdefault(name.rpartition(".")[2], []).append(name)
    shared = []
    for leaf, names in sorted(by_name.items()):
        if len(names) < 2:
            continue
        top = f"cqrs_outbox.{leaf}"
        if leaf in DJANGO_CQRS_PATHS and top in names and only_reexports(sources[top]):
            continue
        shared.append(f"{leaf}: {', '.join(sorted(names))}")
    return shared


def only_reexports(source: str) -> bool:
    """Tell whether a module holds nothing but a docstring, imports and `__all__`."""
    for node in ast.parse(source).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue
        if isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == ["__all__"]:
            continue
        return False
    return True


def project_aliases(sources: Mapping[str, str]) -> list[str]:
    """Return each `import x as y` of a project module (aliases are for third-party
    conventions only: they hide a clash of names the layout should not have)."""
    found = []
    for name, source in sources.items():
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                modules = [(alias.name, alias) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(node, name, name in _packages(sources))
                modules = [(base, alias) for alias in node.names]
            else:
                continue
            found += [f"{name}:{node.lineno} {alias.name} as {alias.asname}"
                      for module, alias in modules
                      if alias.asname and module.split(".")[0] in ROOTS]
    return found


# -- the tree keeps the rules ------------------------------------------------------------

@pytest.fixture(scope="module")
def sources():
    return tree_sources()


def test_layout__no_import_circles(sources):
    assert circles(sources) == []


def test_layout__each_package_imports_only_what_it_may(sources):
    assert stray_imports(sources) == []


def test_layout__only_the_store_and_the_replica_queries_name_a_database(sources):
    assert dialect_checks(sources) == []


def test_layout__no_two_packages_share_a_file_name(sources):
    assert shared_file_names(sources) == []


def test_layout__no_aliases_of_project_modules(sources):
    assert project_aliases(sources) == []


def test_layout__every_package_has_modules_to_check(sources):
    for package in MAY_IMPORT:
        if package not in SHARED:
            assert len([n for n in sources if _within(n, (package,))]) >= 3, package


# -- each rule fails on a tree that breaks it --------------------------------------------

def _tree(**modules: str) -> dict[str, str]:
    return {name.replace("__", "."): source for name, source in modules.items()}


def test_circles__found_through_lazy_imports_but_not_type_checking_ones():
    tree = _tree(
        cqrs_outbox__master__a="def f():\n    from cqrs_outbox.master import b\n",
        cqrs_outbox__master__b="from cqrs_outbox.master import a\n",
        cqrs_outbox__store__c=("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                               "    from cqrs_outbox.store import d\n"),
        cqrs_outbox__store__d="from cqrs_outbox.store import c\n",
    )
    assert circles(tree) == [["cqrs_outbox.master.a", "cqrs_outbox.master.b"]]


@pytest.mark.parametrize(("module", "source"), [
    ("cqrs_outbox.master.x", "from cqrs_outbox.replica import mapping\n"),
    ("cqrs_outbox.replica.x", "from cqrs_outbox.master import outbox\n"),
    ("cqrs_outbox.master.x", "from relay import engine\n"),
    ("cqrs_outbox.master.x", "from cqrs_outbox.ops import sync\n"),
    ("cqrs_outbox.store.x", "from relay import engine\n"),
    ("cqrs_outbox.store.x", "import cqrs_outbox.conf\n"),
    ("cqrs_outbox.core.x", "from cqrs_outbox import store\n"),
    ("relay.x", "from cqrs_outbox.master import outbox\n"),
    ("cqrs_outbox.conf", "from cqrs_outbox.master import mixins\n"),
])
def test_stray_imports__a_forbidden_import_is_named(module, source):
    tree = {**_tree(cqrs_outbox__master__outbox="", cqrs_outbox__master__mixins="",
                    cqrs_outbox__replica__mapping="", cqrs_outbox__ops__sync="",
                    relay__engine="", cqrs_outbox__store="", cqrs_outbox__conf=""),
            module: source}
    assert len(stray_imports(tree)) == 1


def test_stray_imports__allowed_imports_pass():
    tree = _tree(cqrs_outbox__master__x="from cqrs_outbox import store, conf\n",
                 cqrs_outbox__ops__y="from cqrs_outbox.replica import z\n",
                 cqrs_outbox__replica__z="from cqrs_outbox.core import wire\n",
                 cqrs_outbox__store="", cqrs_outbox__conf="", cqrs_outbox__core__wire="")
    assert stray_imports(tree) == []


def test_dialect_checks__a_vendor_test_outside_the_store_is_named():
    tree = _tree(
        cqrs_outbox__master__x="if connection.vendor == 'postgresql':\n    pass\n",
        cqrs_outbox__store__mysql="NAME = 'mysql'\n",
        cqrs_outbox__replica__queries="if connection.vendor == 'mysql':\n    pass\n",
    )
    assert dialect_checks(tree) == ["cqrs_outbox.master.x:1 reads .vendor",
                                    "cqrs_outbox.master.x:1 names 'postgresql'"]


def test_shared_file_names__a_second_module_of_one_name_is_named():
    tree = _tree(cqrs_outbox__replica__store_mysql="", relay__store_mysql="",
                 cqrs_outbox__mixins="from cqrs_outbox.master.mixins import A\n",
                 cqrs_outbox__master__mixins="class A: pass\n",
                 cqrs_outbox__signals="def f(): pass\n", cqrs_outbox__master__signals="")
    assert shared_file_names(tree) == [
        "signals: cqrs_outbox.master.signals, cqrs_outbox.signals",
        "store_mysql: cqrs_outbox.replica.store_mysql, relay.store_mysql",
    ]


def test_project_aliases__named_and_third_party_ones_pass():
    tree = _tree(cqrs_outbox__replica__x=(
        "from pika import exceptions as pika_exceptions\n"
        "from cqrs_outbox.replica import transport as transport_\n"
        "import relay.engine as engine\n"))
    assert project_aliases(tree) == [
        "cqrs_outbox.replica.x:2 transport as transport_",
        "cqrs_outbox.replica.x:3 relay.engine as engine",
    ]


def test_imported_modules__finds_lazy_and_relative_imports():
    source = (
        "from cqrs_outbox import conf\n"
        "def handler():\n"
        "    from cqrs_outbox.master import outbox\n"
        "    import relay.engine\n"
        "    from . import mapping\n"
        "    from ..registry import ReplicaRegistry\n"
    )
    found = imported_modules(source, "cqrs_outbox.replica.apply")
    assert found == {
        "cqrs_outbox.conf",
        "cqrs_outbox.master.outbox",
        "relay.engine",
        "cqrs_outbox.replica.mapping",
        "cqrs_outbox.registry",
    }
