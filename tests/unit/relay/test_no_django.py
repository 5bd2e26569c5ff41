"""The relay imports nothing from Django: its unit tests pass where Django cannot load."""

import ast
import os
import pathlib
import subprocess
import sys

import pytest

import relay

NESTED = "CQRS_RELAY_TESTS_WITHOUT_DJANGO"
RELAY_DIR = pathlib.Path(relay.__file__).parent
HERE = pathlib.Path(__file__)
BLOCKER = 'raise ImportError("Django is blocked: the relay must run without it")\n'


def _imports(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_relay_sources__import_neither_django_nor_the_django_app():
    found = {
        (path.name, name)
        for path in RELAY_DIR.glob("*.py")
        for name in _imports(path)
        if name.split(".")[0] in ("django", "cqrs_outbox")
    }
    assert found == set()


def test_relay_unit_tests__pass_with_django_unimportable(tmp_path):
    if os.environ.get(NESTED):
        pytest.skip("this is the Django-free run itself")
    (tmp_path / "django").mkdir()
    (tmp_path / "django" / "__init__.py").write_text(BLOCKER)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.getcwd()]))
    env[NESTED] = "1"
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-p", "no:django",
            "-W", "ignore::pytest.PytestConfigWarning",
            "-k", "not pass_with_django_unimportable", str(HERE.parent),
        ],
        capture_output=True, text=True, timeout=120, env=env, cwd=HERE.parents[3],
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " passed" in result.stdout and "failed" not in result.stdout
    # The blocker works: importing Django in that environment fails.
    probe = subprocess.run(
        [sys.executable, "-c", "import django"], capture_output=True, text=True, env=env
    )
    assert "Django is blocked" in probe.stderr
