"""The configured LangChain chat model: Anthropic, OpenAI, or any OpenAI-compatible endpoint.

``make_chat_model(settings)`` returns a ``ChatModelChoice``: the model (``None`` offline), its
label (``anthropic:claude-...``) and a notice when a configured backend cannot be used;
``make_chat_model(settings, "openai")`` makes another configured one. ``configured_models``
lists what a user may pick from (each configured chat model by a readable name, then the
extractive answer), as the chat's settings panel does. The
SDKs do the HTTP retries (429/5xx/timeouts, honouring Retry-After); the synthesizer adds
``.with_retry()`` for a stream that breaks mid-way and ``.with_fallbacks()`` to the extractive
answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlparse

from vistarag.agent.settings import Settings

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

Backend = Literal["anthropic", "openai", "extractive"]
HOW_TO_CONFIGURE = ("set ANTHROPIC_API_KEY, OPENAI_API_KEY or OPENAI_BASE_URL (an "
                    "OpenAI-compatible server such as vLLM or Ollama)")
BACKENDS: tuple[Backend, ...] = ("anthropic", "openai", "extractive")
EXTRACTIVE_NAME = "Extractive (offline)"
_HOSTED = {"anthropic": "api.anthropic.com", "openai": "api.openai.com"}


@dataclass(frozen=True)
class ModelOption:
    """A chat model a user may pick: its key (the backend) and a readable name."""

    key: Backend
    name: str


def configured_models(settings: Settings) -> list[ModelOption]:
    """Each configured chat model (Anthropic, then OpenAI or an OpenAI-compatible server), then
    the extractive answer, which is always there."""
    out: list[ModelOption] = []
    if settings.anthropic_api_key or settings.anthropic_base_url:
        out.append(ModelOption("anthropic", _readable(
            settings.anthropic_model, "Anthropic", "anthropic", settings.anthropic_base_url)))
    if settings.openai_api_key or settings.openai_base_url:
        out.append(ModelOption("openai", _readable(
            settings.openai_model, "OpenAI", "openai", settings.openai_base_url)))
    return [*out, ModelOption("extractive", EXTRACTIVE_NAME)]


def _readable(model: str, vendor: str, backend: str, base_url: str | None) -> str:
    """``claude-sonnet-4-6 (Anthropic)``; ``llama3 (OpenAI-compatible, localhost:11434)``."""
    host = urlparse(base_url).netloc if base_url else ""
    if not host or host == _HOSTED[backend]:
        return f"{model} ({vendor})"
    return f"{model} ({vendor}-compatible, {host})"


def default_model(settings: Settings) -> Backend:
    """The key of the model a turn uses unless the user picks another."""
    return choose_backend(settings)[0]


@dataclass(frozen=True)
class ChatModelChoice:
    """The chat model to use (``None``: answer extractively), its label and any notice."""

    model: BaseChatModel | None
    label: str
    backend: Backend
    notice: str | None = None
    key_env: str | None = None
    base_url: str | None = None

    @property
    def can_call_tools(self) -> bool:
        return self.model is not None


def choose_backend(settings: Settings) -> tuple[Backend, str | None]:
    """The backend to use, and a notice when the configured one cannot be used.

    ``auto`` picks Anthropic when ``ANTHROPIC_API_KEY`` is set, else OpenAI when
    ``OPENAI_API_KEY`` or ``OPENAI_BASE_URL`` is set, else the offline extractive answer.
    """
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


def make_chat_model(settings: Settings, backend: Backend | None = None) -> ChatModelChoice:
    """The chat model the settings ask for, or the configured ``backend`` (imported lazily: the
    integrations are heavy)."""
    if backend is not None:
        settings = settings.model_copy(update={"synthesizer": backend})
    backend, notice = choose_backend(settings)
    if backend == "anthropic":
        from langchain_anthropic import ChatAnthropic

        model = ChatAnthropic(
            model=settings.anthropic_model,
            api_key=settings.anthropic_api_key or "not-needed",
            base_url=settings.anthropic_base_url,
            max_tokens=settings.max_tokens,
            max_retries=settings.llm_max_retries,
            default_request_timeout=settings.llm_timeout_s,
            streaming=True,  # tokens reach callbacks (and LangGraph's messages mode) as they come
        )
        return ChatModelChoice(model, f"anthropic:{settings.anthropic_model}", backend,
                               key_env="ANTHROPIC_API_KEY", base_url=settings.anthropic_base_url)
    if backend == "openai":
        from langchain_openai import ChatOpenAI

        model = ChatOpenAI(
            model=settings.openai_model,
            api_key=settings.openai_api_key or "not-needed",  # local endpoints take any key
            base_url=settings.openai_base_url,
            max_completion_tokens=settings.max_tokens,
            max_retries=settings.llm_max_retries,
            timeout=settings.llm_timeout_s,
            streaming=True,
        )
        return ChatModelChoice(model, f"openai:{settings.openai_model}", backend,
                               key_env="OPENAI_API_KEY", base_url=settings.openai_base_url)
    return ChatModelChoice(None, "extractive", "extractive", notice=notice)
