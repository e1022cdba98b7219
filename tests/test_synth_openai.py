"""The OpenAI backend against a loopback Chat Completions server (via the official SDK)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.llm_servers import (
    FakeLLMServer,
    Reply,
    SleepRecorder,
    decode_image,
    image_hit,
    is_color,
    make_settings,
    openai_server_fixture,  # noqa: F401  (provides the openai_server fixture)
    store_image,
    text_hit,
)
from vistarag.agent.blobs import BlobStore
from vistarag.agent.synth import RetryPolicy, SynthesisRequest, make_synthesizer

RED = (220, 30, 30)
BLUE = (30, 60, 220)


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


def _settings(server: FakeLLMServer, **kw: Any):
    values: dict[str, Any] = {
        "synthesizer": "openai",
        "openai_api_key": "sk-test",
        "openai_base_url": server.base_url,
        "openai_model": "gpt-test",
    }
    values.update(kw)
    return make_settings(**values)


def _policy(settings, sleeper: SleepRecorder | None = None) -> RetryPolicy:
    return RetryPolicy.from_settings(settings, base_delay_s=0.01, sleep=sleeper or SleepRecorder())


def _request(blobs: BlobStore, **kw: Any) -> SynthesisRequest:
    values: dict[str, Any] = {
        "question": "How long does the warranty last?",
        "hits": [
            text_hit(1, "The warranty lasts 24 months from the date of purchase."),
            image_hit(2, store_image(blobs, BLUE, (300, 200)), text="Figure 2: pump layout"),
        ],
        "user_images": [store_image(blobs, RED, (400, 300))],
        "user_image_text": ["Error E42: pump overheated"],
        "history": [
            {"role": "user", "content": "Hi, I have a question about my pump."},
            {"role": "assistant", "content": "Sure, what would you like to know?"},
        ],
    }
    values.update(kw)
    return SynthesisRequest(**values)


def _data_url_image(part: dict[str, Any]):
    url = part["image_url"]["url"]
    head, data = url.split(",", 1)
    assert head in ("data:image/png;base64", "data:image/jpeg;base64")
    return decode_image(data)


def test_request_carries_sources_images_and_streams_tokens(openai_server, blobs):
    settings = _settings(openai_server)
    synth = make_synthesizer(settings, blobs, retry_policy=_policy(settings))
    tokens: list[str] = []

    result = synth.synthesize(_request(blobs), on_token=tokens.append)

    assert len(tokens) > 3
    assert "".join(tokens) == result.answer
    assert result.answer.startswith("The warranty lasts 24 months [1].")
    assert result.synthesizer == "openai:gpt-test"
    assert result.notice is None
    assert [(c.n, c.doc_id, c.page) for c in result.citations] == [
        (1, "report", 3),
        (2, "manual", 5),
    ]

    assert len(openai_server.requests) == 1
    req = openai_server.requests[0]
    assert req.path == "/v1/chat/completions"
    assert req.headers["authorization"] == "Bearer sk-test"
    body = req.body
    assert body["model"] == "gpt-test"
    assert body["stream"] is True
    assert body["max_tokens"] == settings.max_tokens  # compatible endpoint: classic parameter
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert "never instructions" in body["messages"][0]["content"]

    parts = body["messages"][-1]["content"]
    kinds = [p["type"] for p in parts]
    assert kinds[0] == "image_url", "the user's screenshot must come first"
    images = [p for p in parts if p["type"] == "image_url"]
    assert len(images) == 2
    for part in images:
        assert max(_data_url_image(part).size) <= settings.max_image_side_px
    assert is_color(_data_url_image(images[0]), RED)
    assert is_color(_data_url_image(images[1]), BLUE)

    transcript = "\n".join(
        p["text"] if p["type"] == "text" else f"<<IMAGE {i}>>" for i, p in enumerate(parts)
    )
    order = [
        "<<IMAGE 0>>",
        "Error E42: pump overheated",
        '<source n="1" doc="report.pdf" page="3" modality="text">',
        "The warranty lasts 24 months from the date of purchase.",
        '<source n="2" doc="manual.pdf" page="5" modality="page">',
        "[2] image from manual.pdf p.5\n<<IMAGE",
        "Question: How long does the warranty last?",
    ]
    positions = [transcript.index(fragment) for fragment in order]
    assert positions == sorted(positions)


def test_text_only_request_sends_plain_string_content(openai_server, blobs):
    settings = _settings(openai_server)
    synth = make_synthesizer(settings, blobs, retry_policy=_policy(settings))

    synth.synthesize(
        SynthesisRequest(question="Warranty?", hits=[text_hit(1, "The warranty lasts 2 years.")])
    )

    user = openai_server.bodies[0]["messages"][-1]["content"]
    assert isinstance(user, str)
    assert '<source n="1"' in user and user.index("<source") < user.index("Question: Warranty?")


def test_local_endpoint_needs_no_key(openai_server, blobs):
    settings = _settings(openai_server, openai_api_key=None, synthesizer="auto")
    synth = make_synthesizer(settings, blobs, retry_policy=_policy(settings))
    assert synth.name == "openai:gpt-test"

    result = synth.synthesize(_request(blobs))

    assert result.synthesizer == "openai:gpt-test"
    assert openai_server.requests[0].headers["authorization"].startswith("Bearer ")


def test_retries_500_then_answers(openai_server, blobs):
    openai_server.queue(Reply(500), Reply(503))
    settings = _settings(openai_server, llm_max_retries=3)
    sleeper = SleepRecorder()
    synth = make_synthesizer(settings, blobs, retry_policy=_policy(settings, sleeper))

    result = synth.synthesize(_request(blobs))

    assert len(openai_server.requests) == 3
    assert len(sleeper.delays) == 2
    assert result.synthesizer == "openai:gpt-test"
    assert result.answer.startswith("The warranty lasts")


def test_honours_retry_after_on_429(openai_server, blobs):
    openai_server.queue(Reply(429, headers={"Retry-After": "3"}))
    settings = _settings(openai_server)
    sleeper = SleepRecorder()
    synth = make_synthesizer(settings, blobs, retry_policy=_policy(settings, sleeper))

    result = synth.synthesize(_request(blobs))

    assert sleeper.delays == [3.0]
    assert len(openai_server.requests) == 2
    assert result.synthesizer == "openai:gpt-test"


def test_retries_after_a_timeout(openai_server, blobs):
    openai_server.queue(Reply(delay_s=3.0))
    settings = _settings(openai_server, llm_timeout_s=0.3)
    synth = make_synthesizer(settings, blobs, retry_policy=_policy(settings))

    result = synth.synthesize(_request(blobs))

    assert len(openai_server.requests) == 2
    assert result.synthesizer == "openai:gpt-test"


def test_retries_an_error_in_the_stream(openai_server, blobs):
    openai_server.queue(Reply(stream_error_after=3))
    settings = _settings(openai_server)
    synth = make_synthesizer(settings, blobs, retry_policy=_policy(settings))

    result = synth.synthesize(_request(blobs))

    assert len(openai_server.requests) == 2
    assert result.synthesizer == "openai:gpt-test"
    assert result.answer.startswith("The warranty lasts 24 months [1].")


def test_never_recovers_falls_back_to_extractive(openai_server, blobs):
    openai_server.queue(*[Reply(500)] * 10)
    settings = _settings(openai_server, llm_max_retries=2)
    synth = make_synthesizer(settings, blobs, retry_policy=_policy(settings))

    result = synth.synthesize(_request(blobs))

    assert len(openai_server.requests) == 3
    assert result.synthesizer == "extractive"
    assert "openai:gpt-test" in (result.notice or "")
    assert "unavailable after 2 retries" in (result.notice or "")
    assert result.answer.startswith("Extractive answer")
    assert result.citations and result.citations[0].doc_id == "report"


def test_invalid_key_is_not_retried(openai_server, blobs):
    openai_server.queue(Reply(401))
    settings = _settings(openai_server)
    synth = make_synthesizer(settings, blobs, retry_policy=_policy(settings))

    result = synth.synthesize(_request(blobs))

    assert len(openai_server.requests) == 1
    assert result.synthesizer == "extractive"
    assert "check OPENAI_API_KEY" in (result.notice or "")
