"""Erasure in one place (ml.orchestration.privacy): every purge says what it removes and runs where a
reader can find it, and the command lists them."""

from __future__ import annotations

from ml.orchestration.cli import main
from ml.orchestration.privacy import PURGES
from ml.orchestration.stages import STAGES


def test_every_purge_runs_in_a_nightly_stage_or_a_command():
    stages = {stage.name for stage in STAGES}
    for purge in PURGES:
        assert purge.runs_in in stages or purge.runs_in.startswith("python -m ml erasure "), purge.name
        assert purge.removes and callable(purge.run)
    assert len({purge.name for purge in PURGES}) == len(PURGES)


def test_the_erasure_command_lists_every_purge(capsys):
    assert main(["erasure", "list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.strip().splitlines()]
    assert listed == [purge.name for purge in PURGES]


def test_an_unknown_command_names_the_commands(capsys):
    assert main(["erase"]) == 2
    assert "no command 'erase'; the commands are: run, backfill" in capsys.readouterr().err
