"""Shared fixtures. Tests never download: the hub is off for the whole session."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
for _key in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL",
             "QDRANT_URL", "VISTARAG_HOME"):
    os.environ.pop(_key, None)
# A test that forgets its own data dir must never write into the user's one.
os.environ["VISTARAG_HOME"] = tempfile.mkdtemp(prefix="vistarag-tests-")
# Nor into the user's model cache (the ONNX query encoder); one export serves the session.
os.environ["VISTARAG_MODEL_CACHE"] = tempfile.mkdtemp(prefix="vistarag-test-models-")
_SESSION_DIRS = (os.environ["VISTARAG_HOME"], os.environ["VISTARAG_MODEL_CACHE"])

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from tests.fixtures_media import SCREENSHOT_LINES, make_pdf, make_screenshot  # noqa: E402
from tests.tiny_clip import build_tiny_clip  # noqa: E402
from vistarag.agent.qdrant import close_all  # noqa: E402
from vistarag.agent.settings import Settings  # noqa: E402


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The session's data dir and model cache go when it ends (each run left about 140 MB in
    the temp dir)."""
    close_all()
    for folder in _SESSION_DIRS:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CLIP with random weights saved in sentence-transformers format (real loading code)."""
    return build_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Text-bridge settings (no joint model) in a fresh data dir."""
    yield Settings(home=tmp_path / "home", joint_model="none", synthesizer="extractive",
                   checkpointer="memory", _env_file=None)
    close_all()


@pytest.fixture
def joint_settings(tmp_path: Path, tiny_clip_dir: Path) -> Settings:
    """Settings with the tiny CLIP as the joint model."""
    yield Settings(home=tmp_path / "home", joint_model=str(tiny_clip_dir), synthesizer="extractive",
                   checkpointer="memory", _env_file=None)
    close_all()


@pytest.fixture
def screenshot(tmp_path: Path) -> Path:
    return make_screenshot(tmp_path / "settings_screen.png", SCREENSHOT_LINES)


@pytest.fixture
def sample_pdf(tmp_path: Path) -> Path:
    return make_pdf(tmp_path / "report.pdf")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's headless Chromium (``/usr/bin/chromium``) through Playwright, one a module."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    from tests.test_ui_browser import CHROMIUM

    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield b
        b.close()
