"""docker-compose.yml points at things that exist: images, build contexts, commands,
settings read from the environment, databases, brokers and dependencies.

Docker does not run here, so the file is read by a small strict parser for the subset it
is written in: block mappings, `- ` list items, and values that are one-line JSON
literals. Anything outside that subset fails the parse, so the parser cannot quietly
disagree with what Compose reads. Where PyYAML happens to be installed, both readings
must also agree.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import django
import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
APP_ROOT = "/app"  # where examples/Dockerfile copies the repository
KEY = re.compile(r'^(?P<key>[A-Za-z0-9_.-]+|"[^"]*"):(?: (?P<value>.+))?$')
HEALTH_CONDITIONS = {"service_healthy"}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
DJANGO_COMMAND_DIRS = [
    Path(django.__file__).parent / "core" / "management" / "commands",
    *sorted((Path(django.__file__).parent / "contrib").glob("*/management/commands")),
]


class SubsetError(ValueError):
    """The file uses YAML outside the subset this parser reads."""


def _lines(text: str) -> list[tuple[int, int, str]]:
    found = []
    for number, raw in enumerate(text.splitlines(), 1):
        if "\t" in raw:
            raise SubsetError(f"line {number}: tab character")
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        if indent % 2:
            raise SubsetError(f"line {number}: indent {indent} is not a multiple of 2")
        found.append((number, indent, stripped))
    return found


def _json(number: int, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SubsetError(f"line {number}: value is not one JSON literal: {text}") from exc


def _block(lines: list, pos: int, indent: int) -> tuple[Any, int]:
    if lines[pos][2].startswith("- "):
        return _sequence(lines, pos, indent)
    return _mapping(lines, pos, indent)


def _sequence(lines: list, pos: int, indent: int) -> tuple[list, int]:
    items = []
    while pos < len(lines) and lines[pos][1] == indent and lines[pos][2].startswith("- "):
        number, _, text = lines[pos]
        items.append(_json(number, text[2:]))
        pos += 1
    return items, pos


def _mapping(lines: list, pos: int, indent: int) -> tuple[dict, int]:
    result: dict = {}
    while pos < len(lines) and lines[pos][1] == indent:
        number, _, text = lines[pos]
        match = KEY.match(text)
        if not match:
            raise SubsetError(f"line {number}: expected 'key:' or 'key: value': {text}")
        key = match["key"].strip('"')
        if key in result:
            raise SubsetError(f"line {number}: duplicate key {key!r}")
        if match["value"] is not None:
            result[key], pos = _json(number, match["value"]), pos + 1
            continue
        pos += 1
        if pos >= len(lines) or lines[pos][1] <= indent:
            raise SubsetError(f"line {number}: {key!r} has no value")
        result[key], pos = _block(lines, pos, lines[pos][1])
    if pos < len(lines) and lines[pos][1] > indent:
        raise SubsetError(f"line {lines[pos][0]}: unexpected indent")
    return result, pos


def parse_subset(text: str) -> dict:
    """Parse the YAML subset of docker-compose.yml; raise SubsetError outside it."""
    lines = _lines(text)
    if not lines or lines[0][1] != 0:
        raise SubsetError("the document must be a mapping starting at column 0")
    document, pos = _mapping(lines, 0, 0)
    if pos != len(lines):
        raise SubsetError(f"line {lines[pos][0]}: text after the document")
    return document


@pytest.fixture(scope="module")
def compose() -> dict:
    return parse_subset(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    return compose["services"]


def _built(services: dict) -> dict:
    return {name: spec for name, spec in services.items() if "build" in spec}


def _repo_dir(working_dir: str) -> Path:
    assert working_dir.startswith(APP_ROOT + "/"), working_dir
    return ROOT / working_dir[len(APP_ROOT) + 1 :]


def _argv(command: Any) -> list[list[str]]:
    """Split a command into the argument lists it runs (`sh -c "a && b"` gives two)."""
    if isinstance(command, str):
        command = shlex.split(command)
    if command[:2] == ["sh", "-c"]:
        return [shlex.split(part) for part in command[2].split("&&")]
    return [command]


def _command_exists(name: str, project: Path) -> bool:
    dirs = [
        *DJANGO_COMMAND_DIRS,
        ROOT / "cqrs_outbox" / "management" / "commands",
        *project.glob("*/management/commands"),
    ]
    return any((folder / f"{name}.py").is_file() for folder in dirs)


# The subset parser itself: it must refuse what it does not understand.


@pytest.mark.parametrize(
    "text",
    [
        "a:\n\tb: 1\n",
        "a:\n   b: 1\n",
        "a: plain words\n",
        "a: 1 # trailing comment\n",
        "a: &anchor 1\n",
        "a: 1\na: 2\n",
        "a:\n",
        "a: 1\n  b: 2\n",
        "- 1\n",
    ],
)
def test_subset_parser__rejects_yaml_outside_the_subset(text: str) -> None:
    with pytest.raises(SubsetError):
        parse_subset(text)


def test_subset_parser__reads_nested_maps_lists_and_json_values() -> None:
    text = (
        '# comment\ntop:\n  list:\n    - "a"\n    - 2\n  flow: ["x", 1]\n'
        '  map: {"k": true}\n  nested:\n    deep: null\nnext: "v"\n'
    )
    assert parse_subset(text) == {
        "top": {"list": ["a", 2], "flow": ["x", 1], "map": {"k": True}, "nested": {"deep": None}},
        "next": "v",
    }


def test_compose__agrees_with_pyyaml_where_installed(compose: dict) -> None:
    yaml = pytest.importorskip("yaml")
    assert yaml.safe_load(COMPOSE.read_text()) == compose


# The compose file.


def test_compose__has_every_service_the_example_needs(services: dict) -> None:
    assert {"postgres", "rabbitmq", "master", "relay", "replica", "consumer", "celery"} <= set(
        services
    )


def test_compose__every_service_has_an_image_or_an_existing_build_context(
    services: dict,
) -> None:
    for name, spec in services.items():
        assert "image" in spec or "build" in spec, name
        if "build" in spec:
            context = ROOT / spec["build"]["context"]
            assert context.is_dir(), name
            assert (context / spec["build"]["dockerfile"]).is_file(), name


def test_compose__dockerfile_copies_paths_that_exist(services: dict) -> None:
    dockerfiles = {ROOT / s["build"]["dockerfile"] for s in _built(services).values()}
    for dockerfile in dockerfiles:
        text = dockerfile.read_text()
        assert f"WORKDIR {APP_ROOT}" in text
        copies = re.findall(r"^COPY (.+) \S+$", text, re.M)
        assert copies
        for sources in copies:
            for source in sources.split():
                assert (ROOT / source).exists(), f"{dockerfile.name} copies missing {source}"


def test_compose__working_dirs_are_django_projects_in_the_repo(services: dict) -> None:
    for name, spec in _built(services).items():
        project = _repo_dir(spec["working_dir"])
        assert (project / "manage.py").is_file(), name


def test_compose__manage_py_commands_exist(services: dict) -> None:
    seen = set()
    for name, spec in _built(services).items():
        project = _repo_dir(spec["working_dir"])
        for argv in _argv(spec["command"]):
            if argv[:2] == ["python", "manage.py"]:
                seen.add(argv[2])
                assert _command_exists(argv[2], project), f"{name}: no command {argv[2]}"
    assert {"cqrs_relay", "cqrs_consume", "migrate"} <= seen


def test_compose__celery_app_module_exists(services: dict) -> None:
    argv = _argv(services["celery"]["command"])[0]
    assert argv[0] == "celery" and "--beat" in argv
    module = argv[argv.index("-A") + 1]
    project = _repo_dir(services["celery"]["working_dir"])
    assert (project / (module.replace(".", "/") + ".py")).is_file(), module


def test_compose__environment_is_read_by_the_service_settings(services: dict) -> None:
    for name, spec in _built(services).items():
        project = _repo_dir(spec["working_dir"])
        settings = "\n".join(p.read_text() for p in project.glob("*/settings.py"))
        for key in spec["environment"]:
            assert f'os.environ.get("{key}"' in settings, f"{name}: settings never read {key}"


def test_compose__database_urls_name_a_postgres_service_and_a_created_database(
    services: dict,
) -> None:
    postgres = services["postgres"]
    created = {postgres["environment"]["POSTGRES_DB"]}
    for volume in postgres.get("volumes", []):
        source = ROOT / volume.split(":")[0]
        created |= set(re.findall(r"CREATE DATABASE (\w+)", source.read_text()))
    for name, spec in _built(services).items():
        url = urlsplit(spec["environment"]["DATABASE_URL"])
        assert url.scheme == "postgres", name
        assert services[url.hostname]["image"].startswith("postgres:"), name
        assert url.path.lstrip("/") in created, f"{name}: database {url.path} is never created"


def test_compose__broker_urls_name_the_rabbitmq_service(services: dict) -> None:
    for name, spec in _built(services).items():
        for key in ("CQRS_BROKER_URL", "CELERY_BROKER_URL"):
            if key in spec["environment"]:
                url = urlsplit(spec["environment"][key])
                assert url.scheme == "amqp", name
                assert services[url.hostname]["image"].startswith("rabbitmq:"), name


def test_compose__replica_and_its_consumer_share_queue_and_database(services: dict) -> None:
    replica, consumer = services["replica"]["environment"], services["consumer"]["environment"]
    assert replica["CQRS_QUEUE"] == consumer["CQRS_QUEUE"]
    assert replica["DATABASE_URL"] == consumer["DATABASE_URL"]
    assert services["master"]["environment"]["DATABASE_URL"] == (
        services["relay"]["environment"]["DATABASE_URL"]
    )


def test_compose__dependencies_exist_and_wait_for_health(services: dict) -> None:
    for name, spec in services.items():
        for dependency, rule in spec.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert rule["condition"] in CONDITIONS, name
            if rule["condition"] in HEALTH_CONDITIONS:
                assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"


def test_compose__dependencies_have_no_cycle(services: dict) -> None:
    def visit(name: str, path: tuple) -> None:
        assert name not in path, " -> ".join((*path, name))
        for dependency in services[name].get("depends_on", {}):
            visit(dependency, (*path, name))

    for name in services:
        visit(name, ())


def test_compose__workers_start_after_their_databases_are_migrated(services: dict) -> None:
    for worker, service in (("relay", "master"), ("celery", "master"), ("consumer", "replica")):
        assert services[worker]["depends_on"][service]["condition"] == "service_healthy"
        assert "migrate" in " ".join(services[service]["command"])


def test_compose__healthchecks_are_exec_form_commands(services: dict) -> None:
    for name, spec in services.items():
        if "healthcheck" in spec:
            test = spec["healthcheck"]["test"]
            assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL"), name
            assert isinstance(spec["healthcheck"]["retries"], int), name
