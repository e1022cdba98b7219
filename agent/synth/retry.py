"""Retries with exponential backoff and jitter for calls to a language model.

The SDK clients are built with ``max_retries=0``; this module decides what is worth retrying
(429, 408/409, 5xx, 529, timeouts, connection errors) and what is not (400, 401, 403, 404...).
"""

from __future__ import annotations

import email.utils
import importlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from vistarag.agent.errors import SynthesisUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRYABLE_STATUS: frozenset[int] = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})
# Error ``type`` values an SSE stream may carry mid-response (HTTP status is then 200).
RETRYABLE_ERROR_TYPES: frozenset[str] = frozenset(
    {"overloaded_error", "api_error", "rate_limit_error", "timeout_error", "server_error"}
)


class ModelUnavailable(SynthesisUnavailable):
    """The model could not be reached or stayed overloaded after every retry."""

    def __init__(self, label: str, attempts: int, reason: str) -> None:
        self.label = label
        self.attempts = attempts
        self.reason = reason
        retries = attempts - 1
        super().__init__(
            f"The model {label} was unavailable after {retries} "
            f"retr{'y' if retries == 1 else 'ies'} ({reason})"
        )


class ModelRejected(SynthesisUnavailable):
    """The model endpoint refused the request in a way retrying cannot fix (400/401/403/404)."""

    def __init__(self, label: str, reason: str, hint: str | None = None) -> None:
        self.label = label
        self.reason = reason
        self.hint = hint
        msg = f"The model {label} refused the request ({reason})"
        super().__init__(f"{msg}; {hint}" if hint else msg)


@dataclass(frozen=True)
class Failure:
    """How one failed attempt should be handled."""

    retryable: bool
    reason: str
    retry_after: float | None = None
    hint: str | None = None


Classifier = Callable[[BaseException], Failure | None]


@dataclass
class RetryPolicy:
    """Backoff ``base_delay_s * 2**attempt`` (capped), minus up to ``jitter`` of it at random."""

    max_retries: int = 3
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    max_retry_after_s: float = 30.0
    jitter: float = 0.5
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> RetryPolicy:
        """Policy from ``Settings`` (``llm_max_retries``; ``llm_retry_base_s`` if it exists)."""
        kwargs: dict[str, Any] = {"max_retries": max(0, int(settings.llm_max_retries))}
        base = getattr(settings, "llm_retry_base_s", None)
        if base is not None:
            kwargs["base_delay_s"] = float(base)
        kwargs.update(overrides)
        return cls(**kwargs)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt + 1`` (``attempt`` counts from 0)."""
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, self.max_retry_after_s)
        backoff = min(self.max_delay_s, self.base_delay_s * (2**attempt))
        return backoff * (1.0 - self.jitter * self.rng.random())


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def classify_status(
    status: int,
    *,
    headers: Mapping[str, str] | None = None,
    error_type: str | None = None,
    message: str | None = None,
    key_env: str = "the API key",
) -> Failure:
    """Decide retry / give up for an HTTP error status (or an SSE ``error`` event)."""
    detail = f"HTTP {status}" if status != 200 else "error event in the stream"
    if error_type:
        detail += f" {error_type}"
    if message:
        detail += f": {message[:200]}"
    if status in RETRYABLE_STATUS or status >= 500:
        return Failure(True, detail, parse_retry_after(headers))
    if status == 200 and (error_type in RETRYABLE_ERROR_TYPES or not error_type):
        return Failure(True, detail)
    if status in (401, 403) or error_type in ("authentication_error", "permission_error"):
        return Failure(False, detail, hint=f"check {key_env}")
    if status == 404 or error_type == "not_found_error":
        return Failure(False, detail, hint="check the model name and the base URL")
    return Failure(False, detail)


def classify_transport(exc: BaseException) -> Failure | None:
    """Timeouts and connection errors raised by httpx/httpx2 (e.g. while reading a stream)."""
    if isinstance(exc, _transport_types("TimeoutException") + (TimeoutError,)):
        return Failure(True, "timed out")
    if isinstance(exc, _transport_types("TransportError") + (ConnectionError,)):
        return Failure(True, f"connection error: {type(exc).__name__}")
    return None


def _transport_types(name: str) -> tuple[type[BaseException], ...]:
    """``httpx.<name>``, plus ``httpx2.<name>`` where the SDKs use it (anthropic 2, openai 3)."""
    types: list[type[BaseException]] = []
    for module_name in ("httpx", "httpx2"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:  # older SDK releases are built on httpx alone
            continue
        types.append(getattr(module, name))
    return tuple(types)


def call_with_retries(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy,
    classify: Classifier,
    label: str,
) -> T:
    """Run ``fn``; retry what ``classify`` calls retryable, up to ``policy.max_retries`` times.

    Raises ``ModelUnavailable`` when retries run out, ``ModelRejected`` for permanent errors;
    exceptions ``classify`` does not recognise (returns ``None``) propagate unchanged.
    """
    attempt = 0
    while True:
        try:
            return fn()
        except Exception as exc:
            failure = classify(exc)
            if failure is None:
                raise
            if not failure.retryable:
                raise ModelRejected(label, failure.reason, failure.hint) from exc
            if attempt >= policy.max_retries:
                raise ModelUnavailable(label, attempt + 1, failure.reason) from exc
            wait = policy.delay(attempt, failure.retry_after)
            log.warning(
                "%s: attempt %d failed (%s); retrying in %.2fs",
                label,
                attempt + 1,
                failure.reason,
                wait,
            )
            policy.sleep(wait)
            attempt += 1
