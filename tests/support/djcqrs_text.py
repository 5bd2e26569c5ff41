"""django-cqrs's own strings, read from its installed source, for tests holding its words.

A test that holds one of django-cqrs's sentences against ours names the template as it
stands in django-cqrs's code; `sentence()` checks that the template is really there
(adjacent literals and f-strings joined, f-string fields as `{}`) before formatting it,
so a case cannot drift from what django-cqrs logs.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
from pathlib import Path
from typing import Any


@functools.cache
def strings() -> frozenset:
    """Return every string literal of the installed django-cqrs package."""
    spec = importlib.util.find_spec("dj_cqrs")
    assert spec is not None and spec.submodule_search_locations, "django-cqrs is not installed"
    found = set()
    for root in spec.submodule_search_locations:
        for path in Path(root).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    found.add(node.value)
                elif isinstance(node, ast.JoinedStr):
                    found.add(_template(node))
    return frozenset(found)


def _template(node: ast.JoinedStr) -> str:
    parts = []
    for value in node.values:
        if isinstance(value, ast.Constant):
            parts.append(str(value.value))
        else:
            parts.append("{}")
    return "".join(parts)


def sentence(template: str, *args: Any) -> str:
    """Return django-cqrs's sentence: `template` (as in its source) filled with `args`.

    A '{0}\\nCQRS create error...' template gives the line after the error text; a
    progress template's leading carriage return is dropped.
    """
    assert template in strings(), f"not in django-cqrs's source: {template!r}"
    text = template % args if "%s" in template else template.format(*args)
    return text.split("\n", 1)[1] if template.startswith("{0}\n") else text.lstrip("\r")
