"""Answer synthesis: LangChain chat models (Anthropic, OpenAI-compatible) and the offline
extractive answer as the last fallback.

``make_synthesizer(settings, blobs)`` returns a ``ChatSynthesizer``; call
``synthesize(SynthesisRequest(...), config)`` to get a ``SynthesisResult``.
"""

from vistarag.agent.synth.base import (
    SynthesisRequest,
    SynthesisResult,
    parse_citations,
)
from vistarag.agent.synth.chat import ChatSynthesizer, ExtractiveChatModel, make_synthesizer
from vistarag.agent.synth.extractive import ExtractiveSynthesizer

__all__ = [
    "ChatSynthesizer",
    "ExtractiveChatModel",
    "ExtractiveSynthesizer",
    "SynthesisRequest",
    "SynthesisResult",
    "make_synthesizer",
    "parse_citations",
]
