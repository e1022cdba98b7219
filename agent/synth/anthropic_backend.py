"""Claude through the official ``anthropic`` SDK: Messages API, streamed, with image blocks."""

from __future__ import annotations

from typing import Any

import anthropic

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

KEY_ENV = "ANTHROPIC_API_KEY"
# A gateway at a custom base URL may not need a key, but the SDK insists on having one.
PLACEHOLDER_KEY = "not-needed"


def to_anthropic_messages(prompt: Prompt) -> list[dict[str, Any]]:
    """History turns plus the new user message as Messages-API content blocks."""
    content: list[dict[str, Any]] = []
    for part in prompt.parts:
        if isinstance(part, ImagePart):
            content.append(
                {
                    "type": "image",
                    "source": {
                        "type": "base64",
                        "media_type": part.image.media_type,
                        "data": part.image.data,
                    },
                }
            )
        else:
            content.append({"type": "text", "text": part.text})
    history = [{"role": m["role"], "content": m["content"]} for m in prompt.history]
    return [*history, {"role": "user", "content": content}]


class AnthropicSynthesizer:
    """Streams an answer from Claude; retries transient failures per ``RetryPolicy``."""

    def __init__(
        self,
        settings: Settings,
        blobs: BlobStore,
        *,
        policy: RetryPolicy | None = None,
        client: anthropic.Anthropic | None = None,
    ) -> None:
        self.settings = settings
        self.blobs = blobs
        self.model = settings.anthropic_model
        self.name = f"anthropic:{self.model}"
        self.base_url = settings.anthropic_base_url
        self.policy = policy or RetryPolicy.from_settings(settings)
        self.client = client or anthropic.Anthropic(
            api_key=settings.anthropic_api_key or (PLACEHOLDER_KEY if self.base_url else None),
            base_url=settings.anthropic_base_url,
            timeout=settings.llm_timeout_s,
            max_retries=0,
        )

    @property
    def label(self) -> str:
        """``anthropic:model at URL`` for notices and logs."""
        return f"{self.name} at {self.base_url or 'api.anthropic.com'}"

    def classify(self, exc: BaseException) -> Failure | None:
        """Retry timeouts, connection errors, 429, 5xx and 529; give up on the rest."""
        if isinstance(exc, anthropic.APITimeoutError):
            return Failure(True, f"timed out after {self.settings.llm_timeout_s:g}s")
        if isinstance(exc, anthropic.APIConnectionError):
            return Failure(True, "connection error")
        if isinstance(exc, anthropic.APIStatusError):
            return classify_status(
                exc.status_code,
                headers=exc.response.headers,
                error_type=exc.type,
                message=exc.api_message,
                key_env=KEY_ENV,
            )
        transport = classify_transport(exc)
        if transport is not None:
            return transport
        if isinstance(exc, anthropic.AnthropicError):
            # CredentialsError exists only in recent SDK releases
            credentials = getattr(anthropic, "CredentialsError", ())
            hint = f"check {KEY_ENV}" if isinstance(exc, credentials) else None
            return Failure(False, f"{type(exc).__name__}: {exc}", hint=hint)
        return None

    def _stream_once(self, prompt: Prompt, on_token: TokenCallback | None) -> str:
        chunks: list[str] = []
        with self.client.messages.stream(
            model=self.model,
            max_tokens=self.settings.max_tokens,
            system=prompt.system,
            messages=to_anthropic_messages(prompt),  # type: ignore[arg-type]
        ) as stream:
            for text in stream.text_stream:
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
