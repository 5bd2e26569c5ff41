"""The supported versions agree everywhere: classifiers, the Installation page's table, the CI
matrix."""

import ast
import configparser
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DRIVERS = {"psycopg 3": "psycopg", "psycopg2": "psycopg2"}


def _classifiers(framework):
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    pattern = re.compile(rf"{re.escape(framework)} :: (\d+\.\d+)$")
    return {m[1] for line in config["metadata"]["classifiers"].splitlines()
            if (m := pattern.search(line.strip()))}


def _matrix():
    """Return (python, django, driver) of each Combination(...) in noxfile.py."""
    tree = ast.parse((ROOT / "noxfile.py").read_text())
    return {
        tuple(arg.value for arg in node.args[:3])
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Combination"
        and len(node.args) >= 3
    }


def _installation_table():
    page = (ROOT / "docs" / "installation.md").read_text()
    rows = re.findall(r"^\| (3\.\d+) \| (\d+\.\d+) \| (psycopg 3|psycopg2) \|", page, re.M)
    return {(python, django, DRIVERS[driver]) for python, django, driver in rows}


def test_matrix__covers_every_python_and_django_the_classifiers_name():
    matrix = _matrix()
    assert len(matrix) >= 3
    assert {python for python, _, _ in matrix} == _classifiers("Programming Language :: Python")
    assert {django for _, django, _ in matrix} == _classifiers("Framework :: Django")


def test_installation_table__is_the_ci_matrix():
    assert _installation_table() == _matrix()


def test_matrix__runs_both_drivers_and_the_oldest_and_newest_pairs():
    matrix = _matrix()
    assert {driver for _, _, driver in matrix} == {"psycopg", "psycopg2"}
    assert ("3.10", "4.2", "psycopg2") in matrix
    newest_python = max(_classifiers("Programming Language :: Python"),
                        key=lambda v: tuple(map(int, v.split("."))))
    assert any(p == newest_python and d.startswith("6") and drv == "psycopg"
               for p, d, drv in matrix)


def test_install_requires__admits_the_newest_django_classified_and_no_later_one():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    requires = config["options"]["install_requires"]
    [bound] = re.findall(r"Django>=4\.2,<(\d+\.\d+)", requires)
    newest = max(_classifiers("Framework :: Django"), key=lambda v: tuple(map(int, v.split("."))))
    major, minor = map(int, newest.split("."))
    assert bound == f"{major}.{minor + 1}"
