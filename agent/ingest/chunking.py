"""Pack text blocks (with boxes) into chunks of bounded size."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_WS = re.compile(r"[ \t\r\f\v]+")


@dataclass
class Block:
    text: str
    bbox: tuple[float, float, float, float] | None = None


_LIGATURES = str.maketrans({
    "\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl",
    "\ufb05": "st", "\ufb06": "st", "\u00a0": " ", "\u2009": " ", "\u202f": " ",
    "\uf0b7": "\u2022", "\uf0a7": "\u2022", "\uf06e": "\u2022", "\uf076": "\u2022",
    "\u2010": "-", "\u2011": "-",
})
_HYPHEN_BREAK = re.compile(r"(\w+)-[ \t]*\n[ \t]*([a-z]\w*)")
_LETTER_SPACED = re.compile(r"\b(?:[A-Za-z] ){3,}[A-Za-z]\b")
_TOKEN = re.compile(r"[A-Za-z]+")


def vocabulary(texts: Iterable[str]) -> set[str]:
    """Lower-cased words of a page or document, to tell "manage-ment" from "cloud-native"."""
    return {w.lower() for t in texts for w in _TOKEN.findall(t)}


def repair(text: str, vocab: set[str] | None = None) -> str:
    """Undo what a PDF text layer does to words: ligature glyphs (``\ufb01`` for "fi"), soft
    and non-breaking hyphens and spaces, private-use bullets, line-end hyphenation (joined
    without the hyphen when the joined word occurs elsewhere in ``vocab``, else kept as a
    compound: "cloud-\nnative" -> "cloud-native") and letter-spaced headings ("R E V E N U E")."""
    if text.isascii() and "\n" not in text and " " not in text:
        return text  # one plain word (most of a table's): nothing to undo
    text = text.translate(_LIGATURES).replace("\u00ad\n", "").replace("\u00ad", "")
    if "\n" not in text and " " not in text:
        return text  # one word (a table's words): no line-end hyphen, no letter spacing

    def join(m: re.Match[str]) -> str:
        a, b = m.group(1), m.group(2)
        if vocab is not None and (a + b).lower() in vocab:
            return a + b
        return f"{a}-{b}"

    text = _HYPHEN_BREAK.sub(join, text)
    return _LETTER_SPACED.sub(lambda m: m.group(0).replace(" ", ""), text)


def clean(text: str) -> str:
    """Each line's runs of spaces and tabs as one space, lines stripped, empty lines dropped."""
    lines = "\n".join(text.replace("\u00ad", "").splitlines())
    stripped = (ln.strip() for ln in _WS.sub(" ", lines).split("\n"))
    return "\n".join(ln for ln in stripped if ln)


def union(a: tuple[float, ...] | None, b: tuple[float, ...] | None) -> tuple[float, ...] | None:
    if a is None:
        return b
    if b is None:
        return a
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def pack_blocks(blocks: Iterable[Block], max_chars: int) -> list[Block]:
    """Merge consecutive blocks up to ``max_chars``; split oversized blocks on sentences."""
    chunks: list[Block] = []
    cur_text: list[str] = []
    cur_len = 0
    cur_box: tuple[float, ...] | None = None
    for block in blocks:
        text = clean(block.text)
        if not text:
            continue
        for piece in _split_long(text, max_chars):
            if cur_text and cur_len + len(piece) + 1 > max_chars:
                chunks.append(Block("\n".join(cur_text), cur_box))
                cur_text, cur_len, cur_box = [], 0, None
            cur_text.append(piece)
            cur_len += len(piece) + 1
            cur_box = union(cur_box, block.bbox)
    if cur_text:
        chunks.append(Block("\n".join(cur_text), cur_box))
    return chunks


def _split_long(text: str, max_chars: int) -> list[str]:
    if len(text) <= max_chars:
        return [text]
    sentences = re.split(r"(?<=[.!?])\s+", text)
    out: list[str] = []
    buf = ""
    for sentence in sentences:
        while len(sentence) > max_chars:
            out.append(sentence[:max_chars])
            sentence = sentence[max_chars:]
        if buf and len(buf) + len(sentence) + 1 > max_chars:
            out.append(buf)
            buf = sentence
        else:
            buf = f"{buf} {sentence}".strip()
    if buf:
        out.append(buf)
    return out


_AMOUNT = re.compile(
    r"(?<![\w.,])[$€£¥(\-\u2013]*\d(?:[\d,.]*\d)?\)?(?:[ \t]?%)?\)?(?![\w])"
)
_EMPTY_VALUE = re.compile(r"[ \t]*=[ \t]*(?=[;\n]|$)|(?<=;)[ \t]*;", re.M)
_YEAR = re.compile(r"(?:19|20)\d\d")


def without_amounts(text: str) -> str:
    """A table chunk as the dense model reads it: amounts left out ("$16,388", "(4)%", "1.25"),
    years and short numbers kept ("2019", "Q3", "404"). Figures carry little meaning for a
    sentence embedding and are most of a statement's tokens; the lexical vector and the stored
    text still hold every figure."""

    def keep(m: re.Match[str]) -> str:
        token = m.group(0)
        digits = sum(ch.isdigit() for ch in token)
        if _YEAR.fullmatch(token) or (digits <= 3 and token.isdigit()):
            return token
        return ""

    return _WS.sub(" ", _EMPTY_VALUE.sub("", _AMOUNT.sub(keep, text))).strip()


def pack_text(text: str, max_chars: int) -> list[str]:
    """Chunk plain text on paragraph boundaries."""
    paragraphs = [Block(p) for p in re.split(r"\n\s*\n", text)]
    return [b.text for b in pack_blocks(paragraphs, max_chars)]
