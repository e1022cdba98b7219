"""The embedders behind LangChain's ``Embeddings`` interface (what langchain-qdrant takes)."""

from __future__ import annotations

from langchain_core.embeddings import Embeddings

from vistarag.agent.embeddings import SentenceEmbedder, load_joint_embedder
from vistarag.agent.errors import VistaRAGError
from vistarag.agent.models import Models
from vistarag.agent.onnx_text import OnnxTextEncoder
from vistarag.agent.settings import Settings


class SentenceEmbeddings(Embeddings):
    """LangChain embeddings over a VistaRAG embedder (text inputs; normalised vectors)."""

    def __init__(self, embedder: SentenceEmbedder | OnnxTextEncoder) -> None:
        self.embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.encode_document(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embedder.encode_query([text])[0].tolist()


def text_embeddings(settings: Settings | None = None) -> SentenceEmbeddings:
    """The text space (packaged MiniLM by default, on ``Settings.text_backend``) as LangChain
    ``Embeddings``: the vectors ingestion stores."""
    return SentenceEmbeddings(Models(settings or Settings()).text_encoder)


def joint_embeddings(settings: Settings | None = None) -> SentenceEmbeddings:
    """The joint image-text space's text side as LangChain ``Embeddings``."""
    s = settings or Settings()
    embedder = load_joint_embedder(s.joint_model, s.device, s.hub_probe_timeout_s)
    if embedder is None:
        raise VistaRAGError(
            f"joint model {s.joint_model!r} is not available (text-bridge mode); "
            "set VISTARAG_JOINT_MODEL to a local model directory"
        )
    return SentenceEmbeddings(embedder)
