"""Pick the synthesizer from settings and wrap remote models with the extractive fallback."""

from __future__ import annotations

import logging
from typing import Literal

from vistarag.agent.blobs import BlobStore
from vistarag.agent.errors import SynthesisUnavailable
from vistarag.agent.settings import Settings
from vistarag.agent.synth.base import (
    SynthesisRequest,
    SynthesisResult,
    Synthesizer,
    TokenCallback,
)
from vistarag.agent.synth.extractive import ExtractiveSynthesizer
from vistarag.agent.synth.retry import RetryPolicy

log = logging.getLogger(__name__)

Backend = Literal["anthropic", "openai", "extractive"]
FALLBACK_REASON = "language model unavailable"


class FallbackSynthesizer:
    """Runs ``primary``; if the model stays unavailable or refuses, answers extractively.

    The fallback result has ``synthesizer == "extractive"`` and a ``notice`` that says which
    model failed and why (and what to check, for 401/403).
    """

    def __init__(self, primary: Synthesizer, fallback: ExtractiveSynthesizer | None = None) -> None:
        self.primary = primary
        self.fallback = fallback or ExtractiveSynthesizer(reason=FALLBACK_REASON)
        self.name = primary.name

    def synthesize(
        self, request: SynthesisRequest, on_token: TokenCallback | None = None
    ) -> SynthesisResult:
        try:
            return self.primary.synthesize(request, on_token)
        except SynthesisUnavailable as exc:
            log.warning("%s; answering extractively", exc)
            result = self.fallback.synthesize(request, on_token)
            return result.model_copy(update={"notice": f"{exc}; this answer is extractive."})


def choose_backend(settings: Settings) -> tuple[Backend, str | None]:
    """The backend to use, and a notice when the configured one cannot be used."""
    has_anthropic = bool(settings.anthropic_api_key or settings.anthropic_base_url)
    has_openai = bool(settings.openai_api_key or settings.openai_base_url)
    wanted = settings.synthesizer
    if wanted == "auto":
        if settings.anthropic_api_key:
            return "anthropic", None
        if has_openai:
            return "openai", None
        return "extractive", None
    if wanted == "anthropic" and not has_anthropic:
        return "extractive", (
            "VISTARAG_SYNTHESIZER=anthropic but ANTHROPIC_API_KEY is not set; "
            "this answer is extractive."
        )
    if wanted == "openai" and not has_openai:
        return "extractive", (
            "VISTARAG_SYNTHESIZER=openai but neither OPENAI_API_KEY nor OPENAI_BASE_URL is set; "
            "this answer is extractive."
        )
    return wanted, None


def make_synthesizer(
    settings: Settings, blobs: BlobStore, *, retry_policy: RetryPolicy | None = None
) -> Synthesizer:
    """The synthesizer for ``settings``: Claude, an OpenAI(-compatible) model, or extractive.

    ``auto`` picks Anthropic when ``ANTHROPIC_API_KEY`` is set, else OpenAI when
    ``OPENAI_API_KEY`` or ``OPENAI_BASE_URL`` is set, else the offline extractive synthesizer.
    Remote models are wrapped in ``FallbackSynthesizer``. ``retry_policy`` overrides the
    backoff (tests pass tiny delays).
    """
    backend, notice = choose_backend(settings)
    policy = retry_policy or RetryPolicy.from_settings(settings)
    if backend == "anthropic":
        from vistarag.agent.synth.anthropic_backend import AnthropicSynthesizer

        return FallbackSynthesizer(AnthropicSynthesizer(settings, blobs, policy=policy))
    if backend == "openai":
        from vistarag.agent.synth.openai_backend import OpenAISynthesizer

        return FallbackSynthesizer(OpenAISynthesizer(settings, blobs, policy=policy))
    if notice:
        return ExtractiveSynthesizer(reason="language model not configured", notice=notice)
    return ExtractiveSynthesizer()
