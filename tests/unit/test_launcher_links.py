"""The launcher keeps the server's data links in step with $DAAS_DATA, touching nothing but its links."""

from __future__ import annotations

import grp
import json
import os
import subprocess
import sys
from pathlib import Path

from daas_spawner.launcher import link_data


def mount(proposal: str, name: str, source: Path) -> dict:
    return {"proposal": proposal, "name": name, "source": str(source), "writable": name == "processed"}


def test_links_are_made_updated_and_removed(tmp_path: Path) -> None:
    raw, processed, moved = tmp_path / "raw", tmp_path / "processed", tmp_path / "moved"
    for folder in (raw, processed, moved):
        folder.mkdir()
    links = tmp_path / "work" / "data"
    link_data([mount("A", "raw", raw), mount("A", "processed", processed), mount("B", "raw", raw)], str(links))
    assert os.readlink(links / "A" / "raw") == str(raw)
    assert os.readlink(links / "A" / "processed") == str(processed)
    assert (links / "A").stat().st_mode & 0o777 == 0o700

    (links / "A" / "my-notes.txt").write_text("mine")  # the user's own file is never touched
    link_data([mount("A", "raw", moved)], str(links))
    assert os.readlink(links / "A" / "raw") == str(moved)
    assert not os.path.lexists(links / "A" / "processed")
    assert not (links / "B").exists()  # an emptied proposal folder goes
    assert (links / "A" / "my-notes.txt").read_text() == "mine"


def test_a_file_where_a_link_belongs_is_kept_and_reported(tmp_path: Path, capsys) -> None:
    links = tmp_path / "data"
    (links / "A").mkdir(parents=True)
    (links / "A" / "raw").write_text("not a link")
    link_data([mount("A", "raw", tmp_path)], str(links))
    assert (links / "A" / "raw").read_text() == "not a link"
    assert "not replacing" in capsys.readouterr().err


def test_no_report_mode_links_and_execs(tmp_path: Path) -> None:
    launcher = Path(__file__).resolve().parents[2] / "daas_spawner" / "launcher.py"
    env = dict(os.environ, DAAS_DATA_DIR="data", DAAS_DATA=json.dumps([mount("A", "raw", tmp_path)]))
    result = subprocess.run(
        [sys.executable, "-I", str(launcher), "--no-report", "readlink", "data/A/raw"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path)


def test_a_location_the_job_cannot_open_is_not_linked_and_is_reported(tmp_path: Path, capsys) -> None:
    """Missing or not a folder here; a folder of a group the job lacks: tests/integration/test_data.py."""
    raw, processed = tmp_path / "raw", tmp_path / "processed"
    raw.mkdir()
    links = tmp_path / "data"
    assert link_data([mount("A", "raw", raw)], str(links)) == []
    raw.rmdir()
    raw.write_text("a file where the folder was")
    unreachable = link_data([mount("A", "raw", raw), mount("A", "processed", processed)], str(links))
    assert unreachable == ["A/raw", "A/processed"]
    assert not os.path.lexists(links / "A" / "raw")  # the link made before is gone
    err = capsys.readouterr().err
    assert f"cannot open {raw} (Not a directory)" in err
    assert f"cannot open {processed} (No such file or directory)" in err
    assert f"runs with the groups: {grp.getgrgid(os.getgid()).gr_name}" in err
