"""The Chainlit app root VistaRAG prepares: a welcome page per language and its own logos, so
Chainlit logs neither "Translated markdown file ... not found" nor "Missing custom logo"."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from vistarag.agent.settings import Settings
from vistarag.ui.web.boot import FAVICON, LOGOS, prepare_root, server_env
from vistarag.ui.web.settings import UISettings

NOISE = ("Translated markdown file", "Missing custom logo")


def test_prepare_root_writes_the_welcome_per_language_and_the_logos(tmp_path):
    root = prepare_root(Settings(home=tmp_path, _env_file=None), UISettings())
    welcome = (root / "chainlit.md").read_text(encoding="utf-8")
    assert (root / "chainlit_en-US.md").read_text(encoding="utf-8") == welcome
    assert (root / "chainlit_de-DE.md").is_file()
    for name in (*LOGOS, FAVICON):  # Chainlit serves public/favicon.* as icon and avatar
        assert (root / "public" / name).read_text(encoding="utf-8").startswith("<svg")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_server_does_not_inherit_ci_mode(tmp_path, monkeypatch):
    """CI=true would make Chainlit's CLI run in its CI mode, which sets a fake OPENAI_API_KEY in
    the server: the chat then offered OpenAI as a configured model (and no offline notice)."""
    monkeypatch.setenv("CI", "true")
    env = server_env(Settings(home=tmp_path, _env_file=None), UISettings(), None)
    assert "CI" not in env and env["VISTARAG_HOME"] == str(tmp_path.resolve())


def test_the_chat_starts_without_missing_file_warnings(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("VISTARAG_", "ANTHROPIC_", "OPENAI_", "CHAINLIT_"))}
    env.update({"VISTARAG_HOME": str(tmp_path / "home"), "VISTARAG_JOINT_MODEL": "none"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "vistarag.ui.cli", "ui", "--host", "127.0.0.1", "--port",
         str(port)], cwd=tmp_path, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("chat server did not start:\n" + log.read_text()[-3000:])
            time.sleep(0.5)
        with httpx.Client(base_url=url, timeout=30) as client:
            for theme in ("light", "dark"):
                logo = client.get("/logo", params={"theme": theme})
                assert logo.status_code == 200 and b"VistaRAG" in logo.content
            assert client.post("/auth/header").status_code == 200  # the local user, no login
            settings = client.get("/project/settings", params={"language": "en-US"})
            assert settings.status_code == 200, settings.text
            assert "VistaRAG" in settings.json()["markdown"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = log.read_text()
    assert "available at" in text, text
    assert not [n for n in NOISE if n in text], text
