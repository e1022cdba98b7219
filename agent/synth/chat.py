"""Synthesis on LangChain chat models, with the offline extractive answer as the last fallback.

``ChatSynthesizer.synthesize(request, config)`` builds the prompt as messages (the user's and the
retrieved images as image blocks, retrieved text fenced as untrusted data) and runs

    model  .with_retry(stream broke mid-way)  .with_fallbacks([extractive answer])

Called inside a LangGraph node, the model's tokens reach callers through the ``messages``
stream mode, the extractive fallback's too (it is a chat model of its own).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import RunnableConfig, RunnableLambda

from vistarag.agent.blobs import BlobStore
from vistarag.agent.llm import ChatModelChoice
from vistarag.agent.settings import Settings
from vistarag.agent.synth.base import SynthesisRequest, SynthesisResult, make_result
from vistarag.agent.synth.extractive import ExtractiveSynthesizer
from vistarag.agent.synth.prompt import build_prompt, to_messages

EXTRACTIVE = "extractive"


class StreamInterrupted(Exception):
    """The model's stream broke off after it had started (worth one more try)."""


class EmptyAnswer(Exception):
    """The model answered with no text."""


class ExtractiveChatModel(BaseChatModel):
    """A chat model that "answers" with a precomputed extractive answer, streamed word by word.

    It ignores its input messages: it exists so the offline answer travels the same path as a
    model's (``with_fallbacks``, the ``messages`` stream mode, callbacks).
    """

    answer: str
    streaming: bool = False  # set True (explicitly) to stream inside a plain ``invoke``

    @property
    def _llm_type(self) -> str:
        return "vistarag-extractive"

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> ChatResult:
        message = AIMessage(content=self.answer, response_metadata={"synthesizer": EXTRACTIVE})
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for piece in re.findall(r"\S+\s*|\s+", self.answer):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager is not None:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
        yield ChatGenerationChunk(
            message=AIMessageChunk(content="", response_metadata={"synthesizer": EXTRACTIVE})
        )


def interrupted(exc: BaseException) -> bool:
    """True for an error event inside a stream that had started (HTTP status 200)."""
    status = getattr(exc, "status_code", None)
    if status is not None:
        return status < 400
    return type(exc).__name__ == "APIError"  # openai: an error object in the SSE data


def describe_failure(exc: BaseException, choice: ChatModelChoice, retries: int) -> str:
    """Why the model gave no answer, and what to check."""
    label = choice.label
    status = getattr(exc, "status_code", None)
    if isinstance(exc, EmptyAnswer):
        return f"The model {label} returned an empty answer"
    if status in (401, 403):
        return f"The model {label} refused the request (HTTP {status}; check {choice.key_env})"
    if status in (400, 404, 422):
        return (f"The model {label} rejected the request (HTTP {status}; check the model name "
                "and the base URL)")
    if isinstance(exc, StreamInterrupted) or (status is not None and status < 400):
        return f"The model {label} broke off its answer repeatedly"
    if "Connection" in type(exc).__name__:
        where = f" at {choice.base_url}" if choice.base_url else ""
        return (f"The model {label} could not be reached{where} "
                f"(connection error, {retries} retries)")
    detail = f"HTTP {status}" if status else type(exc).__name__
    return f"The model {label} was unavailable after {retries} retries ({detail})"


class ChatSynthesizer:
    """Answers a ``SynthesisRequest`` with the configured chat model, or extractively."""

    def __init__(self, choice: ChatModelChoice, blobs: BlobStore, settings: Settings) -> None:
        self.choice = choice
        self.blobs = blobs
        self.settings = settings
        self.name = choice.label

    def extractive(self, request: SynthesisRequest, reason: str) -> ExtractiveChatModel:
        answer = ExtractiveSynthesizer(reason=reason).answer_text(request)
        return ExtractiveChatModel(answer=answer, streaming=True)

    def synthesize(
        self, request: SynthesisRequest, config: RunnableConfig | None = None
    ) -> SynthesisResult:
        """The answer with its ``[n]`` citations; falls back to the extractive answer."""
        if self.choice.model is None:
            reason = "language model not configured" if self.choice.notice else "offline mode"
            message = self.extractive(request, reason).invoke([], config)
            return make_result(message.text, request.hits, EXTRACTIVE, self.choice.notice,
                               request.matched_text)

        failures: list[BaseException] = []
        model = self.choice.model

        def call(messages: list[BaseMessage], config: RunnableConfig) -> BaseMessage:
            try:
                message = model.invoke(messages, config)
            except Exception as exc:
                failures.append(exc)
                raise (StreamInterrupted(str(exc)) if interrupted(exc) else exc) from exc
            if not message.text.strip():
                failures.append(EmptyAnswer())
                raise EmptyAnswer()
            return message

        chain = RunnableLambda(call, name="vlm").with_retry(
            retry_if_exception_type=(StreamInterrupted,),
            stop_after_attempt=self.settings.llm_stream_attempts,
            exponential_jitter_params={"initial": self.settings.llm_retry_initial_s, "max": 4.0},
        ).with_fallbacks([self.extractive(request, "language model unavailable")])
        prompt = build_prompt(request, self.blobs, self.settings)
        message = chain.invoke(to_messages(prompt), config)
        if message.response_metadata.get("synthesizer") == EXTRACTIVE:
            why = describe_failure(failures[-1], self.choice, self.settings.llm_max_retries)
            return make_result(message.text, request.hits, EXTRACTIVE,
                               f"{why}; this answer is extractive.", request.matched_text)
        return make_result(message.text, request.hits, self.choice.label,
                           query=request.matched_text)


def make_synthesizer(settings: Settings, blobs: BlobStore) -> ChatSynthesizer:
    """The synthesizer for ``settings`` (the chat model is created once, here)."""
    from vistarag.agent.llm import make_chat_model

    return ChatSynthesizer(make_chat_model(settings), blobs, settings)
