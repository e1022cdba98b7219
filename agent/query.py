"""Query encoding: text into the text and joint spaces; images into the joint space plus OCR."""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

from vistarag.agent.imaging import flatten
from vistarag.agent.index import QueryVectors
from vistarag.agent.metric_terms import line_items, named_statements
from vistarag.agent.models import Models
from vistarag.agent.query_ocr import read_query_image
from vistarag.agent.sparse import query_vector


@dataclass
class EncodedQuery:
    """Vectors per space, plus the text the reranker and synthesizer see."""

    vectors: QueryVectors
    text: str = ""
    image_text: list[str] = field(default_factory=list)
    line_items: list[str] = field(default_factory=list)
    """Statement line items of each metric the text names (``metric_terms.line_items``)."""
    statements: list[str] = field(default_factory=list)
    """Financial statements the text names ("income statement"), for the reranker."""

    @property
    def rerank_text(self) -> str:
        """The instruction first, then what the query images say (composed queries use both),
        then the line items of a metric the text names."""
        parts = [self.text, *self.image_text, *self.line_items]
        return "\n".join(t for t in parts if t.strip())


def encode_query(
    models: Models, text: str = "", images: list[Image.Image] | None = None
) -> EncodedQuery:
    """Encode a text, image or composed (image + instruction) query.

    A metric the text names ("operating margin") also searches by the statement line items it
    is computed from: one more text vector per metric, and its line items in the lexical query
    and the reranker's text.
    """
    images = [flatten(im) for im in images or []]
    text = text.strip()
    # read fast and tidied (``query_ocr``); the chat has usually read it already (cached)
    image_text = [read_query_image(im).text for im in images]
    vectors = QueryVectors()
    texts = [t for t in [text, *image_text] if t.strip()]
    if text and image_text and any(image_text):
        texts.append("\n".join([text, *image_text]))
    items = line_items(text)
    texts += items
    if texts:
        vectors.text = list(models.text_encoder.encode_query(texts))
        lexical = query_vector("\n".join([text, *image_text, *items]))
        if lexical is not None:
            vectors.lexical = [lexical]
    joint = models.joint
    if joint is not None:
        if text:
            vectors.joint += list(joint.encode_query([text]))
        if images:
            vectors.joint += list(joint.encode_query(images))
    return EncodedQuery(vectors=vectors, text=text, image_text=image_text, line_items=items,
                        statements=named_statements(text))
