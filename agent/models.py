"""The models one process uses, loaded lazily from Settings: text, joint, OCR."""

from __future__ import annotations

import logging
import threading
from functools import cached_property

from vistarag.agent import onnx_text
from vistarag.agent.embeddings import (
    SentenceEmbedder,
    joint_notice,
    load_joint_embedder,
    load_text_embedder,
    resolve_text_model,
)
from vistarag.agent.ocr import RapidOcrEngine, get_ocr
from vistarag.agent.onnx_text import OnnxTextEncoder
from vistarag.agent.settings import Settings

TEXT_BRIDGE = "none (text-bridge)"
log = logging.getLogger(__name__)


class Models:
    """Lazy access to the configured models; each loads once per process.

    Nothing heavy is imported until a model is used: sentence-transformers, transformers and
    torch load with the first ``text`` or ``joint`` access, RapidOCR with the first ``ocr``.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._query_text: SentenceEmbedder | OnnxTextEncoder | None = None
        self._query_text_lock = threading.Lock()

    @cached_property
    def text(self) -> SentenceEmbedder:
        return load_text_embedder(self.settings.text_model, self.settings.device)

    @property
    def query_text(self) -> SentenceEmbedder | OnnxTextEncoder:
        """The text-space encoder for queries: the ONNX export of the text model when there is
        an up-to-date one (no torch import), else the sentence-transformers model itself.
        Loaded once; a caller arriving while another thread loads it waits for that load."""
        with self._query_text_lock:
            if self._query_text is None:
                self._query_text = self._load_query_text()
            return self._query_text

    def _load_query_text(self) -> SentenceEmbedder | OnnxTextEncoder:
        s = self.settings
        if s.fast_query_encoder and "text" not in self.__dict__:
            fast = onnx_text.load(s.text_model, resolve_text_model(s.text_model), s.model_cache)
            if fast is not None:
                return fast
        return self.text

    def load_query_encoder_in_background(self) -> None:
        """Start loading the query encoder on a thread, so a fresh process opens its index
        meanwhile (ONNX Runtime builds its session outside the GIL: a `search` starts 0.1-0.4 s
        sooner)."""
        if self._query_text is None:
            threading.Thread(target=lambda: self.query_text, daemon=True).start()

    def prepare_query_encoder(self) -> None:
        """Export the loaded text model for fast query encoding, once per model (see
        ``onnx_text``); a no-op when it is not loaded, exported already, or cannot be."""
        s = self.settings
        if s.fast_query_encoder and "text" in self.__dict__:
            onnx_text.export(self.text.model, resolve_text_model(s.text_model), s.model_cache)

    @cached_property
    def joint(self) -> SentenceEmbedder | None:
        s = self.settings
        embedder = load_joint_embedder(s.joint_model, s.device, s.hub_probe_timeout_s)
        notice = joint_notice(s.joint_model) if embedder is None else None
        if notice:
            log.info("%s", notice)  # front ends show it once per knowledge base
        return embedder

    @property
    def joint_notice(self) -> str | None:
        """Why the configured joint model is missing (text-bridge mode), or None.

        None also when the joint model is switched off on purpose (``none``). Loads the joint
        model if nobody has yet. Front ends show it once per knowledge base
        (``vistarag.agent.notices.pending_notices``).
        """
        if self.joint is not None:
            return None
        return joint_notice(self.settings.joint_model)

    @property
    def text_bridge(self) -> bool:
        """True when images are found only through their OCR text and captions."""
        return self.joint is None

    @property
    def ocr(self) -> RapidOcrEngine:
        return get_ocr()

    def record(self) -> dict[str, object]:
        """What a collection built with these models records (checked on every open)."""
        joint = self.joint
        return {
            "text_model": self.settings.text_model,
            "text_dim": self.query_text.dim,  # the same model's, without loading torch
            "joint_model": joint.name if joint else TEXT_BRIDGE,
            "joint_dim": joint.dim if joint else 0,
        }
