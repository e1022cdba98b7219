"""A second process on the same embedded index gets a clear error, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from vistarag.agent.index import get_backend


def test_cli_reports_an_index_locked_by_another_process(settings) -> None:
    get_backend(settings)  # this process holds the embedded index
    cli = Path(sys.executable).with_name("vistarag")
    env = {**os.environ, "VISTARAG_HOME": str(settings.home), "VISTARAG_JOINT_MODEL": "none"}
    proc = subprocess.run([str(cli), "kb", "list"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert "open in another process" in proc.stderr and "QDRANT_URL" in proc.stderr
    assert f"pid {os.getpid()}" in proc.stderr  # names the process that holds it
    assert "Traceback" not in proc.stderr
