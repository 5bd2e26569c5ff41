"""The relay, the shared core and the outbox store import nothing from Django: their unit
tests pass where Django cannot load, and so does importing every one of their modules."""

import ast
import os
import pathlib
import pkgutil
import subprocess
import sys

import pytest

import cqrs_outbox.core
import cqrs_outbox.store
import relay

NESTED = "CQRS_RELAY_TESTS_WITHOUT_DJANGO"
RELAY_DIR = pathlib.Path(relay.__file__).parent
CORE_DIR = pathlib.Path(cqrs_outbox.core.__file__).parent
STORE_DIR = pathlib.Path(cqrs_outbox.store.__file__).parent
HERE = pathlib.Path(__file__)
UNIT_DIRS = [HERE.parent, HERE.parent.parent / "core"]
BLOCKER = 'raise ImportError("Django is blocked: the relay must run without it")\n'
# What each Django-free package may import from this project besides itself.
ALLOWED = {
    "relay": ("cqrs_outbox.core", "cqrs_outbox.store"),
    "cqrs_outbox.store": ("cqrs_outbox.core",),
    "cqrs_outbox.core": (),
}


def _imports(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def _forbidden(package, directory):
    """Return (file, name) of each import of Django, or of this project outside what
    `package` may import."""
    found = set()
    for path in directory.glob("*.py"):
        for name in _imports(path):
            root = name.split(".")[0]
            inside = name == package or name.startswith(package + ".")
            allowed = any(name == a or name.startswith(a + ".") for a in ALLOWED[package])
            if root == "django" or (root in ("cqrs_outbox", "relay") and not (inside or allowed)):
                found.add((path.name, name))
    return found


@pytest.mark.parametrize(("package", "directory"), [
    ("relay", RELAY_DIR), ("cqrs_outbox.core", CORE_DIR), ("cqrs_outbox.store", STORE_DIR),
])
def test_sources__import_neither_django_nor_the_django_app(package, directory):
    assert _forbidden(package, directory) == set()


def test_forbidden__sees_django_the_app_and_the_relay_where_they_do_not_belong(tmp_path):
    (tmp_path / "bad.py").write_text(
        "import django.db\nfrom cqrs_outbox import conf\nfrom cqrs_outbox.core import wire\n"
        "from relay import store\nfrom cqrs_outbox import store\n"
    )
    bad = {("bad.py", "django.db"), ("bad.py", "cqrs_outbox.conf")}
    assert _forbidden("relay", tmp_path) == bad
    assert _forbidden("cqrs_outbox.store", tmp_path) == bad | {("bad.py", "relay.store")}
    assert _forbidden("cqrs_outbox.core", tmp_path) == bad | {
        ("bad.py", "relay.store"), ("bad.py", "cqrs_outbox.store")}


def _blocked_env(tmp_path):
    (tmp_path / "django").mkdir()
    (tmp_path / "django" / "__init__.py").write_text(BLOCKER)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.getcwd()]))
    env[NESTED] = "1"
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


def test_relay_and_core_unit_tests__pass_with_django_unimportable(tmp_path):
    if os.environ.get(NESTED):
        pytest.skip("this is the Django-free run itself")
    env = _blocked_env(tmp_path)
    result = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-p", "no:django",
            "-W", "ignore::pytest.PytestConfigWarning",
            "-k", "not pass_with_django_unimportable and not import_with_django_unimportable",
            *map(str, UNIT_DIRS),
        ],
        capture_output=True, text=True, timeout=900, env=env, cwd=HERE.parents[3],
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " passed" in result.stdout and "failed" not in result.stdout
    # The blocker works: importing Django in that environment fails.
    probe = subprocess.run(
        [sys.executable, "-c", "import django"], capture_output=True, text=True, env=env
    )
    assert "Django is blocked" in probe.stderr


def test_relay_and_core_modules__import_with_django_unimportable(tmp_path):
    if os.environ.get(NESTED):
        pytest.skip("this is the Django-free run itself")
    names = [f"relay.{m.name}" for m in pkgutil.iter_modules([str(RELAY_DIR)])
             if m.name != "__main__"]  # runs the relay
    names += [f"cqrs_outbox.core.{m.name}" for m in pkgutil.iter_modules([str(CORE_DIR)])]
    names += [f"cqrs_outbox.store.{m.name}" for m in pkgutil.iter_modules([str(STORE_DIR)])]
    assert {"relay.engine", "cqrs_outbox.core.wire", "cqrs_outbox.store.mysql"} <= set(names)
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    result = subprocess.run(
        [sys.executable, "-c", code, *names], capture_output=True, text=True,
        env=_blocked_env(tmp_path), timeout=60, cwd=HERE.parents[3],
    )
    assert result.returncode == 0, result.stderr[-3000:]
