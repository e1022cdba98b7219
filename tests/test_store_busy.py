"""A second process on the same embedded index gets a clear error, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from vistarag.agent.qdrant import get_client


def test_cli_reports_an_index_locked_by_another_process(settings) -> None:
    get_client(settings)  # this process holds the embedded index
    cli = Path(sys.executable).with_name("vistarag")
    env = {**os.environ, "VISTARAG_HOME": str(settings.home), "VISTARAG_JOINT_MODEL": "none"}
    proc = subprocess.run([str(cli), "kb", "list"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert "open in another process" in proc.stderr and "QDRANT_URL" in proc.stderr
    assert "Traceback" not in proc.stderr
