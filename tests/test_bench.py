"""`frontdesk bench` runs the real server end to end and reports against the plain-insert floor."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_bench_runs_end_to_end_and_reports_the_floor(tmp_path: Path) -> None:
    # A small count keeps it short; the phases, the floor and the report are the same code paths.
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")}
    done = subprocess.run(
        [sys.executable, "-m", "frontdesk", "bench", "--count", "2000"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**environment, "COLUMNS": "200"},
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "full load" in output and "half load" in output, output
    assert "floor:" in output and "rows/s" in output, output
    assert "target: p99 < 250 ms at half load" in output, output


def test_bench_refuses_a_scale_out_file_that_is_not_one(tmp_path: Path) -> None:
    embedded = tmp_path / "embedded.toml"
    embedded.write_text('[database]\nurl = "sqlite:///./x.db"\n', encoding="utf-8")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")}

    done = subprocess.run(
        [sys.executable, "-m", "frontdesk", "bench", "--config", str(embedded)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**environment, "COLUMNS": "200"},
    )

    assert done.returncode == 2, done.stdout + done.stderr
    assert "database.url must be a PostgreSQL URL" in done.stderr
    assert not (tmp_path / "x.db").exists(), "nothing was started"
