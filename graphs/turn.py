"""Reading one user turn out of messages and input keys; modality detection; follow-ups."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage

from vistarag.agent import followup
from vistarag.agent.blobs import BlobStore
from vistarag.agent.ingest.discover import kind_of

BLOB_SCHEME = "blob:"
_VIDEO_WORDS = re.compile(
    r"\b(video|clip|footage|scene|keyframe|frame|timestamp|minute|second)s?\b|\b\d{1,2}:\d{2}\b",
    re.I,
)
_FOLLOW_UP = re.compile(
    r"^\s*(and|what about|how about|also|then|same|ok|so)\b|\b(it|its|that|this|those|these|they|"
    r"them|there|next|previous|above|below|same)\b",
    re.I,
)


def message_parts(message: AnyMessage) -> tuple[str, list[str], list[str]]:
    """Text, image references and file paths in a message's content blocks."""
    content = message.content
    if isinstance(content, str):
        return content, [], []
    texts: list[str] = []
    images: list[str] = []
    files: list[str] = []
    for block in content:
        if isinstance(block, str):
            texts.append(block)
            continue
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind in ("image", "image_url"):
            ref = _image_ref(block)
            if ref:
                images.append(ref)
        elif kind == "file" and block.get("url"):
            files.append(block["url"])
    return "\n".join(t for t in texts if t), images, files


def _image_ref(block: dict[str, Any]) -> str | None:
    if block.get("type") == "image_url":
        url = block.get("image_url", {})
        url = url.get("url") if isinstance(url, dict) else url
        return url
    return block.get("url") or block.get("path") or (
        f"data:{block.get('mime_type', 'image/png')};base64,{block['base64']}"
        if block.get("base64") else None
    )


def store_image_ref(ref: str, blobs: BlobStore) -> str:
    """Turn a data URL into a blob reference; paths and blob refs pass through."""
    if ref.startswith("data:"):
        header, _, payload = ref.partition(",")
        ext = header.split("/")[-1].split(";")[0] or "png"
        return BLOB_SCHEME + blobs.put_bytes(base64.b64decode(payload), ext)
    return ref


def blob_refs(refs: list[str]) -> list[str]:
    """Blob store references of ``blob:`` image references."""
    return [ref.removeprefix(BLOB_SCHEME) for ref in refs if ref.startswith(BLOB_SCHEME)]


def human_message(text: str, images: list[str], files: list[str]) -> HumanMessage:
    """A HumanMessage holding text plus image/file references as standard content blocks."""
    if not images and not files:
        return HumanMessage(content=text)
    blocks: list[str | dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    blocks += [{"type": "image", "url": ref} for ref in images]
    blocks += [{"type": "file", "url": path} for path in files]
    return HumanMessage(content=blocks)


def last_human(messages: list[AnyMessage]) -> HumanMessage | None:
    """The last human message, if no AI answer came after it (i.e. the pending turn)."""
    for message in reversed(messages):
        if isinstance(message, AIMessage):
            return None
        if isinstance(message, HumanMessage):
            return message
    return None


def detect_modality(text: str, images: list[str], attachments: list[str]) -> str:
    """text / image / text+image / document / video."""
    if any(kind_of(Path(a)) == "video" for a in attachments) or (
        text and _VIDEO_WORDS.search(text) and not images
    ):
        return "video"
    if attachments:
        return "document"
    if images and text.strip():
        return "text+image"
    if images:
        return "image"
    return "text"


def other_period(text: str, prior: list[dict[str, str]]) -> str:
    """"the same for 2019" / "and the year before?": the previous question asked for that
    period (a question of its own, to search with and to answer), or ""."""
    previous = [h["content"] for h in prior if h["role"] == "user"]
    return (followup.other_period(previous[-1], text) or "") if previous else ""


def follow_up(
    text: str, prior: list[dict[str, str]], citations: list[dict[str, Any]]
) -> tuple[str, dict[str, Any] | None]:
    """The text to search with, and a page hint: a follow-up searches with the previous question
    too, and "next/previous page" targets the neighbour of the page cited first last turn.
    (A follow-up for another period is searched as ``other_period``'s question instead.)"""
    if not is_follow_up(text):
        return text, None
    previous = [h["content"] for h in prior if h["role"] == "user"]
    retrieval_text = f"{previous[-1]}\n{text}" if previous else text
    target = followup.page_target(text, citations)
    if target is None:
        return retrieval_text, None
    return retrieval_text, {"doc_id": target[0], "page": target[1]}


def is_follow_up(text: str) -> bool:
    """Short questions leaning on the previous turn ("and the figure on the next page?")."""
    return bool(text) and len(text.split()) <= 12 and bool(_FOLLOW_UP.search(text))


def history(messages: list[AnyMessage], limit: int = 6) -> list[dict[str, str]]:
    """Prior turns as plain text, oldest first (the pending human message excluded)."""
    out: list[dict[str, str]] = []
    for message in messages:
        if isinstance(message, (HumanMessage, AIMessage)):
            text, _, _ = message_parts(message)
            role = "user" if isinstance(message, HumanMessage) else "assistant"
            out.append({"role": role, "content": text})
    if out and out[-1]["role"] == "user":
        out = out[:-1]
    return out[-limit:]


def without_inline_images(messages: Any, blobs: BlobStore) -> Any:
    """The same messages with inline (base64 / data URL) images stored as blobs and referenced.

    Runs inside the messages reducer, so image bytes never reach a checkpoint, not even the
    one LangGraph writes for the raw input.
    """
    items = messages if isinstance(messages, list) else [messages]
    out = []
    for message in items:
        content = getattr(message, "content", None)
        if isinstance(content, list) and any(_is_inline_image(b) for b in content):
            blocks = [
                {"type": "image", "url": store_image_ref(_image_ref(b) or "", blobs)}
                if _is_inline_image(b) else b
                for b in content
            ]
            message = message.model_copy(update={"content": blocks})
        out.append(message)
    return out if isinstance(messages, list) else out[0]


def _is_inline_image(block: Any) -> bool:
    if not isinstance(block, dict) or block.get("type") not in ("image", "image_url"):
        return False
    if block.get("base64"):
        return True
    return (_image_ref(block) or "").startswith("data:")
