"""Answer synthesis: vision-language models and the offline extractive synthesizer.

``make_synthesizer(settings, blobs)`` returns a ``Synthesizer``; call
``synthesize(SynthesisRequest(...), on_token=...)`` to get a ``SynthesisResult``.
"""

from vistarag.agent.synth.base import (
    SynthesisRequest,
    SynthesisResult,
    Synthesizer,
    TokenCallback,
    parse_citations,
)
from vistarag.agent.synth.extractive import ExtractiveSynthesizer
from vistarag.agent.synth.factory import FallbackSynthesizer, choose_backend, make_synthesizer
from vistarag.agent.synth.retry import ModelRejected, ModelUnavailable, RetryPolicy

__all__ = [
    "ExtractiveSynthesizer",
    "FallbackSynthesizer",
    "ModelRejected",
    "ModelUnavailable",
    "RetryPolicy",
    "SynthesisRequest",
    "SynthesisResult",
    "Synthesizer",
    "TokenCallback",
    "choose_backend",
    "make_synthesizer",
    "parse_citations",
]
