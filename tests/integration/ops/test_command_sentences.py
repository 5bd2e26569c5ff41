"""The commands write django-cqrs's lines for the same case, and its dump byte for byte.

Scripts read these lines. Each case names django-cqrs's template as it stands in its
installed source (`tests.support.djcqrs_text` checks it is there), fills it with the
case's values and looks for a line of our output (stdout, stderr or the CommandError)
that opens with it.
"""

from __future__ import annotations

import pytest
from django.core.management import CommandError

from tests.integration.ops.conftest import run_command
from tests.support import djcqrs_text
from tests.testproject.master import models

pytestmark = pytest.mark.django_db(transaction=True)

# name -> (django-cqrs's template, its values, compare up to this text or '', command)
CASES = {
    "dump-progress-start": (
        "Processing {0} records with batch size {1}", (1, 10), "",
        ["cqrs_bulk_dump", "-c", "author", "-o", "-", "-b", "10", "--progress"]),
    "dump-progress": (
        "\r{0} of {1} processed - {2}% with rate {3:.1f} rps, to go {4} ...{5:20}",
        (1, 1, 100, 0.0, "n/a", " "), " with rate ",
        ["cqrs_bulk_dump", "-c", "author", "-o", "-", "--progress"]),
    "dump-done": (
        "Done!\n{0} instance(s) saved.\n{1} instance(s) processed.", (1, 1), "",
        ["cqrs_bulk_dump", "-c", "author", "-o", "-"]),
    "dump-unknown-cqrs-id": (
        "Wrong CQRS ID: {0}!", ("nope",), "", ["cqrs_bulk_dump", "-c", "nope", "-o", "-"]),
    "sync-progress-start": (
        "Processing {0} records with batch size {1}", (1, 5), "",
        ["cqrs_sync", "--cqrs-id", "author", "-f", "{}", "-b", "5", "--progress"]),
    "sync-progress": (
        "\r{0} of {1} processed - {2}% with rate {3:.1f} rps, to go {4} ...{5:20}",
        (1, 1, 100, 0.0, "n/a", " "), " with rate ",
        ["cqrs_sync", "--cqrs-id", "author", "-f", "{}", "--progress"]),
    "sync-done": (
        "Done!\n{0} instance(s) synced.\n{1} instance(s) processed.", (1, 1), "",
        ["cqrs_sync", "--cqrs-id", "author", "-f", "{}"]),
    "sync-filter-not-json": (
        "Bad filter kwargs!", (), "", ["cqrs_sync", "--cqrs-id", "author", "-f", "{nope"]),
    "sync-filter-unknown-field": (
        "Bad filter kwargs! {0}", ("Cannot resolve keyword 'nope' into field.",), "field.",
        ["cqrs_sync", "--cqrs-id", "author", "-f", '{"nope": 1}']),
    "sync-nothing-found": (
        "No objects found for filter!", (), "",
        ["cqrs_sync", "--cqrs-id", "author", "-f", '{"name": "nobody"}']),
}


def _output(args, capsys):
    try:
        out, err = run_command(*args)
    except CommandError as exc:
        out, err = "", str(exc)
    captured = capsys.readouterr()
    return "\n".join((out, err, captured.out, captured.err))


@pytest.mark.parametrize("name", sorted(CASES))
def test_command_line__opens_with_django_cqrs_sentence(name, capsys):
    """django-cqrs's dump and sync print these lines (progress, closing counts, a bad
    filter, an unknown CQRS_ID); ours print a line that opens with the same words."""
    template, args, cut, command = CASES[name]
    models.Author.objects.create(name="a")
    theirs = djcqrs_text.sentence(template, *args)
    if cut:
        theirs = theirs[: theirs.index(cut) + len(cut)]
    text = _output(command, capsys)
    assert theirs in text, text
    first_line = theirs.splitlines()[0]
    assert any(line.startswith(first_line) for line in text.splitlines()), text


def test_bulk_dump__of_no_rows_is_the_cqrs_id_alone(tmp_path, monkeypatch):
    """django-cqrs's dump writes the CQRS_ID, then a newline before each row: a dump of
    no rows is one line without a newline at its end."""
    monkeypatch.chdir(tmp_path)
    run_command("cqrs_bulk_dump", "-c", "author")
    assert (tmp_path / "author.dump").read_bytes() == b"author"
    models.Author.objects.create(name="a")
    run_command("cqrs_bulk_dump", "-c", "author", "--force")
    dump = (tmp_path / "author.dump").read_text()
    assert dump.startswith("author\n{") and not dump.endswith("\n")
    assert len(dump.splitlines()) == 2
