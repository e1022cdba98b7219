"""Evidence once: hits of the same region, page or image collapse into one hit.

A page can come back as its render (``page``), as text chunks and table rows on it, and as the
figures on it; the same figure crop can be stored more than once. ``collapse`` keeps the best
hit of each piece of evidence, in score order, and records on it every modality that matched
(``extra["modalities"]``) and the ids it absorbed (``extra["merged"]``), so the top k are k
distinct pieces of evidence.

A video's ``clip`` point (the whole clip) contains every moment of that video the way a page
render contains its page: when a moment of the same video (a transcript segment, a keyframe) is
among the hits, the kept hit is the best such moment, at the clip's score if that was higher, so
an answer cites ``talk.mp4 @ 00:03-00:06`` rather than the whole clip at ``00:00``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from vistarag.agent.types import Hit

CONTAIN = 0.8  # share of the smaller box inside the larger one that makes them one region
_NORM = re.compile(r"\W+", re.UNICODE)


def _area(b: Sequence[float]) -> float:
    return max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])


def _contained(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over the smaller box's area (1.0: one box lies inside the other)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    small = min(_area(a), _area(b))
    return (ix * iy) / small if small > 0 else 0.0


def _text_key(hit: Hit) -> str:
    return _NORM.sub(" ", hit.content().lower()).strip()


def _time_overlap(a: Hit, b: Hit) -> bool:
    if a.t_start is None or b.t_start is None:
        return False
    a_end = a.t_end if a.t_end is not None else a.t_start
    b_end = b.t_end if b.t_end is not None else b.t_start
    if a_end == a.t_start or b_end == b.t_start:  # instants: the same moment
        return abs(a.t_start - b.t_start) < 0.5
    inter = min(a_end, b_end) - max(a.t_start, b.t_start)
    return inter > 0.8 * min(a_end - a.t_start, b_end - b.t_start)


def _clip_and_moment(clip: Hit, moment: Hit) -> bool:
    return (clip.modality == "clip" and moment.modality != "clip"
            and moment.t_start is not None and moment.page is None)


def same_evidence(a: Hit, b: Hit) -> bool:
    """Whether two hits show the same thing: one region, one page render, one image."""
    if a.id == b.id:
        return True
    if a.is_image and b.is_image and a.blob and a.blob == b.blob and a.modality == b.modality:
        return True  # identical image content (blobs are content-addressed)
    if a.doc_id != b.doc_id:
        return False
    if _clip_and_moment(a, b) or _clip_and_moment(b, a):
        return True  # the whole clip contains each of its moments
    if a.page is not None and a.page == b.page:
        if a.modality == "page" or b.modality == "page":
            return True  # a page render contains everything on its page
        if a.bbox and b.bbox and len(a.bbox) == 4 and len(b.bbox) == 4:
            return _contained(a.bbox, b.bbox) >= CONTAIN
        ta, tb = _text_key(a), _text_key(b)
        return bool(ta) and ta == tb
    if a.page is None and b.page is None and _time_overlap(a, b):
        return True
    if a.page is None and b.page is None and a.t_start is None and b.t_start is None:
        ta, tb = _text_key(a), _text_key(b)
        return bool(ta) and ta == tb
    return False


MAX_MERGED_TEXTS = 8  # a statement page has 5-8 row chunks


def _texts(absorbed: Hit, shown: Hit) -> list[str]:
    """What the shown hit keeps of the text hits it absorbed (the table rows on a statement
    page whose plain text matched best), so an answer can still quote them."""
    texts = [*absorbed.extra.get("merged_texts", []), *shown.extra.get("merged_texts", [])]
    if absorbed.modality == "text" and absorbed.text and absorbed.text != shown.text:
        texts.insert(0, absorbed.text)
    return list(dict.fromkeys(texts))[:MAX_MERGED_TEXTS]


def _inside(hit: Hit, best: Hit) -> bool:
    """``hit``'s box is a clearly smaller region within ``best``'s."""
    a, b = hit.bbox, best.bbox
    if not (a and b and len(a) == 4 and len(b) == 4) or best.modality == "page":
        return False
    return _area(a) < 0.8 * _area(b) and _contained(a, b) >= CONTAIN


def collapse(hits: list[Hit]) -> list[Hit]:
    """One hit per piece of evidence, best score first; the kept hit lists every modality.

    Hits are compared with each group's best hit. The input is not modified.
    """
    ordered = sorted(hits, key=lambda h: -float(h.score))
    kept: list[Hit] = []
    for hit in ordered:
        for i, best in enumerate(kept):
            if not same_evidence(best, hit):
                continue
            modalities = list(best.extra.get("modalities") or [best.modality])
            if hit.modality not in modalities:
                modalities.append(hit.modality)
            page_first = best.modality == "page" and not best.extra.get("merged")
            if _clip_and_moment(best, hit) or (
                hit.modality != "page" and (page_first or _inside(hit, best))
            ):
                # The page render, the whole clip (or a larger region) matched best, but a part
                # of it says precisely what and where (a table row inside a page's text, the
                # moment a sentence is spoken): show the part, at the best score.
                merged = [*best.extra.get("merged", []), best.id]
                extra = {**hit.extra, "modalities": modalities, "merged": merged,
                         "merged_texts": _texts(best, hit)}
                kept[i] = hit.model_copy(update={"score": best.score, "extra": extra})
            else:
                extra = {**best.extra, "modalities": modalities,
                         "merged": [*best.extra.get("merged", []), hit.id],
                         "merged_texts": _texts(hit, best)}
                kept[i] = best.model_copy(update={"extra": extra})
            break
        else:
            extra = {**hit.extra, "modalities": [hit.modality]}
            kept.append(hit.model_copy(update={"extra": extra}))
    return kept
