"""OpenAI or any OpenAI-compatible endpoint (vLLM, Ollama, LM Studio) via the ``openai`` SDK.

Chat Completions with ``stream=True``; images travel as ``image_url`` data URLs.
"""

from __future__ import annotations

from typing import Any

import openai

from vistarag.agent.blobs import BlobStore
from vistarag.agent.settings import Settings
from vistarag.agent.synth.base import (
    SynthesisRequest,
    SynthesisResult,
    TokenCallback,
    make_result,
)
from vistarag.agent.synth.prompt import ImagePart, Prompt, build_prompt
from vistarag.agent.synth.retry import (
    Failure,
    ModelRejected,
    RetryPolicy,
    call_with_retries,
    classify_status,
    classify_transport,
)

KEY_ENV = "OPENAI_API_KEY"
# Local OpenAI-compatible servers ignore the key, but the SDK insists on having one.
PLACEHOLDER_KEY = "not-needed"


def to_openai_messages(prompt: Prompt) -> list[dict[str, Any]]:
    """System message, history turns, then the user message (plain text when it has no images)."""
    user: str | list[dict[str, Any]]
    if prompt.images:
        user = []
        for part in prompt.parts:
            if isinstance(part, ImagePart):
                user.append({"type": "image_url", "image_url": {"url": part.image.data_url}})
            else:
                user.append({"type": "text", "text": part.text})
    else:
        user = prompt.text()
    history = [{"role": m["role"], "content": m["content"]} for m in prompt.history]
    return [
        {"role": "system", "content": prompt.system},
        *history,
        {"role": "user", "content": user},
    ]


class OpenAISynthesizer:
    """Streams an answer from a chat-completions endpoint; retries transient failures."""

    def __init__(
        self,
        settings: Settings,
        blobs: BlobStore,
        *,
        policy: RetryPolicy | None = None,
        client: openai.OpenAI | None = None,
    ) -> None:
        self.settings = settings
        self.blobs = blobs
        self.model = settings.openai_model
        self.name = f"openai:{self.model}"
        self.base_url = settings.openai_base_url
        self.policy = policy or RetryPolicy.from_settings(settings)
        self.client = client or openai.OpenAI(
            api_key=settings.openai_api_key or PLACEHOLDER_KEY,
            base_url=settings.openai_base_url,
            timeout=settings.llm_timeout_s,
            max_retries=0,
        )

    @property
    def label(self) -> str:
        """``openai:model at URL`` for notices and logs."""
        return f"{self.name} at {self.base_url or 'api.openai.com'}"

    def classify(self, exc: BaseException) -> Failure | None:
        """Retry timeouts, connection errors, 429, 5xx and stream errors; give up on the rest."""
        if isinstance(exc, openai.APITimeoutError):
            return Failure(True, f"timed out after {self.settings.llm_timeout_s:g}s")
        if isinstance(exc, openai.APIConnectionError):
            return Failure(True, "connection error")
        if isinstance(exc, openai.APIStatusError):
            body = exc.body if isinstance(exc.body, dict) else {}
            return classify_status(
                exc.status_code,
                headers=exc.response.headers,
                error_type=exc.type,
                message=str(body.get("message") or "") or None,
                key_env=KEY_ENV,
            )
        if isinstance(exc, openai.APIError):  # an error event inside the stream
            return classify_status(200, error_type=exc.type, message=exc.message, key_env=KEY_ENV)
        transport = classify_transport(exc)
        if transport is not None:
            return transport
        if isinstance(exc, openai.OpenAIError):
            return Failure(False, f"{type(exc).__name__}: {exc}")
        return None

    def _token_limit(self) -> dict[str, int]:
        # api.openai.com wants max_completion_tokens; compatible servers know max_tokens.
        key = "max_tokens" if self.base_url else "max_completion_tokens"
        return {key: self.settings.max_tokens}

    def _stream_once(self, prompt: Prompt, on_token: TokenCallback | None) -> str:
        chunks: list[str] = []
        stream = self.client.chat.completions.create(
            model=self.model,
            messages=to_openai_messages(prompt),  # type: ignore[arg-type]
            stream=True,
            **self._token_limit(),  # type: ignore[arg-type]
        )
        with stream:
            for chunk in stream:
                for choice in chunk.choices:
                    if choice.index != 0:
                        continue
                    text = choice.delta.content if choice.delta else None
                    if not text:
                        continue
                    chunks.append(text)
                    if on_token is not None:
                        on_token(text)
        return "".join(chunks)

    def synthesize(
        self, request: SynthesisRequest, on_token: TokenCallback | None = None
    ) -> SynthesisResult:
        prompt = build_prompt(request, self.blobs, self.settings)
        answer = call_with_retries(
            lambda: self._stream_once(prompt, on_token),
            policy=self.policy,
            classify=self.classify,
            label=self.label,
        )
        if not answer.strip():
            raise ModelRejected(self.label, "the model returned an empty answer")
        return make_result(answer, request.hits, self.name)
