"""A second process on the same embedded index goes through its holder, or, when the holder does
not serve it, gets a clear error, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from vistarag.agent.index import get_backend
from vistarag.agent.index.edge import EdgeBackend


def kb_list(settings) -> subprocess.CompletedProcess[str]:
    cli = Path(sys.executable).with_name("vistarag")
    env = {**os.environ, "VISTARAG_HOME": str(settings.home), "VISTARAG_JOINT_MODEL": "none"}
    return subprocess.run([str(cli), "kb", "list"], env=env, capture_output=True, text=True,
                          timeout=120)


def test_cli_reports_an_index_locked_by_a_process_that_does_not_serve_it(settings) -> None:
    silent = EdgeBackend(settings.qdrant_dir / "edge")  # holds the index, serves nobody
    try:
        proc = kb_list(settings)
    finally:
        silent.close()
    assert proc.returncode == 2
    assert "open in another process" in proc.stderr and "QDRANT_URL" in proc.stderr
    assert f"pid {os.getpid()}" in proc.stderr  # names the process that holds it
    assert "does not serve other processes" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_goes_through_the_process_that_holds_the_index(settings) -> None:
    get_backend(settings)  # this process holds the embedded index and serves it
    proc = kb_list(settings)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
