"""The code keeps a shape a newcomer can read: small files (STYLE.md: one idea a file, split past
~300 lines). ruff's lint and format run in CI beside the tests (`make lint`)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ROOT

MAX_LINES = 300


def _source_files() -> list[Path]:
    return sorted(
        [
            ROOT / "modal_app.py",
            *(ROOT / "handlers").rglob("*.py"),
            *(ROOT / "pipelines").rglob("*.py"),
            *(ROOT / "scripts").rglob("*.py"),
        ]
    )


def test_no_source_file_is_past_300_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in _source_files()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}
