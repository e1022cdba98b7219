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

    Nothing heavy is imported until a model is used: onnxruntime with the first
    ``text_encoder`` access (sentence-transformers, transformers and torch too when the ONNX
    export is still to be made), sentence-transformers with ``text`` or ``joint``, RapidOCR
    with the first ``ocr``.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._text_encoder: SentenceEmbedder | OnnxTextEncoder | None = None
        self._text_encoder_lock = threading.Lock()

    @cached_property
    def text(self) -> SentenceEmbedder:
        """The text model in sentence-transformers (torch); what the ONNX exports are made of."""
        return load_text_embedder(self.settings.text_model, self.settings.device)

    @property
    def text_encoder(self) -> SentenceEmbedder | OnnxTextEncoder:
        """What encodes text documents and queries, per ``Settings.text_backend``: an ONNX
        export of the text model (made on first use, then loaded without torch) or the
        sentence-transformers model itself. Loaded once; a caller arriving while another
        thread loads it waits for that load."""
        with self._text_encoder_lock:
            if self._text_encoder is None:
                self._text_encoder = self._load_text_encoder()
            return self._text_encoder

    def _load_text_encoder(self) -> SentenceEmbedder | OnnxTextEncoder:
        s = self.settings
        if s.text_backend == "torch" or (s.device or "cpu") != "cpu":
            return self.text
        int8 = s.text_backend == "onnx-int8"
        model_dir = resolve_text_model(s.text_model)
        encoder = onnx_text.load(s.text_model, model_dir, s.model_cache, int8)
        if encoder is None and onnx_text.export(self.text.model, model_dir, s.model_cache, int8):
            encoder = onnx_text.load(s.text_model, model_dir, s.model_cache, int8)
        return encoder or self.text

    def load_text_encoder_in_background(self) -> None:
        """Start loading the text encoder on a thread, so a fresh process opens its index
        meanwhile (ONNX Runtime builds its session outside the GIL: a `search` starts 0.1-0.4 s
        sooner)."""
        if self._text_encoder is None:
            threading.Thread(target=lambda: self.text_encoder, daemon=True).start()

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
            "text_dim": self.text_encoder.dim,
            "joint_model": joint.name if joint else TEXT_BRIDGE,
            "joint_dim": joint.dim if joint else 0,
        }
