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
    ``text_encoder`` access (an ONNX export still to be made is made by a child process, so
    torch stays out of this one), sentence-transformers with ``text`` or ``joint``, RapidOCR
    with the first ``ocr``.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._text_encoder: SentenceEmbedder | OnnxTextEncoder | None = None
        self._text_encoder_lock = threading.Lock()
        self._loader: threading.Thread | None = None

    @cached_property
    def text(self) -> SentenceEmbedder:
        """The text model in sentence-transformers (torch); what the ONNX exports are made of."""
        return load_text_embedder(self.settings.text_model, self.settings.device)

    @property
    def text_encoder(self) -> SentenceEmbedder | OnnxTextEncoder:
        """What encodes text documents and queries, per ``Settings.text_backend``: an ONNX
        export of the text model (made on first use by a child process, loaded without torch)
        or the sentence-transformers model itself. Loaded once; a caller arriving while another
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
        if encoder is None and (
            onnx_text.export_in_child(model_dir, s.model_cache, int8)
            or onnx_text.export(self.text.model, model_dir, s.model_cache, int8)
        ):
            encoder = onnx_text.load(s.text_model, model_dir, s.model_cache, int8)
        return encoder or self.text

    def load_text_encoder_in_background(self) -> None:
        """Start loading the text encoder on a thread, so the caller's other work (reading the
        catalog, an image) overlaps it; ONNX Runtime builds its session outside the GIL.

        Start it only once the command is known to go ahead (its knowledge base exists, the
        index is not locked). The thread is not a daemon: a process that exits while it runs
        waits for it (a daemon thread inside ONNX Runtime or torch at interpreter exit ends the
        process with SIGABRT, "terminate called without an active exception").
        """
        if self._text_encoder is None and self._loader is None:
            self._loader = threading.Thread(
                target=self._load_quietly, name="vistarag-text-encoder", daemon=False
            )
            self._loader.start()

    def _load_quietly(self) -> None:
        try:
            self.text_encoder  # noqa: B018
        except Exception as exc:  # the caller's own access raises it again, with context
            log.debug("background text encoder load failed: %s", exc)

    def wait_for_loads(self, timeout: float | None = None) -> None:
        """Join a background load if one is running (before a process exits)."""
        loader = self._loader
        if loader is not None and loader.is_alive():
            loader.join(timeout)

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
