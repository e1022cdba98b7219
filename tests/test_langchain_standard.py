"""LangChain's standard embeddings suites on VistaRAG's text (MiniLM) and joint (tiny CLIP) spaces.

The suites build ``embeddings_class(**embedding_model_params)``; the small subclasses below give
the adapters in ``vistarag.agent.lc_embeddings`` such a keyword constructor by going through the
public factories (``text_embeddings`` / ``joint_embeddings``) with a ``Settings`` object.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_tests.integration_tests import EmbeddingsIntegrationTests
from langchain_tests.unit_tests import EmbeddingsUnitTests

from vistarag.agent.errors import VistaRAGError
from vistarag.agent.lc_embeddings import SentenceEmbeddings, joint_embeddings, text_embeddings
from vistarag.agent.settings import Settings

TEXT_MODEL = "packaged:all-MiniLM-L6-v2"
# The integration suites mix sync and async tests; the async ones need the asyncio mark, which
# pytest-asyncio then reports as superfluous on the sync ones.
ASYNC_SUITE = [
    pytest.mark.asyncio,
    pytest.mark.filterwarnings("ignore:The test <Function .* is marked with '@pytest.mark.asyncio"),
]


class TextEmbeddings(SentenceEmbeddings):
    """The text space, configured like the app (keyword settings, else ``VISTARAG_*`` env)."""

    def __init__(self, **settings: Any) -> None:
        super().__init__(text_embeddings(Settings(_env_file=None, **settings)).embedder)
        self.model_name = self.embedder.name


class JointEmbeddings(SentenceEmbeddings):
    """The joint space's text side (tiny CLIP), configured like the app."""

    def __init__(self, **settings: Any) -> None:
        super().__init__(joint_embeddings(Settings(_env_file=None, **settings)).embedder)
        self.model_name = self.embedder.name


class _TinyClip:
    """Gives the suites the session's tiny CLIP directory (properties cannot take fixtures)."""

    clip_dir: Path | None = None

    @pytest.fixture(autouse=True)
    def _tiny_clip(self, tiny_clip_dir: Path) -> None:
        type(self).clip_dir = tiny_clip_dir

    @property
    def embeddings_class(self) -> type[JointEmbeddings]:
        return JointEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"joint_model": str(self.clip_dir)}


class TestTextEmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[TextEmbeddings]:
        return TextEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"text_model": TEXT_MODEL}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return {"VISTARAG_TEXT_MODEL": TEXT_MODEL}, {}, {"model_name": TEXT_MODEL}


class TestTextEmbeddingsIntegration(EmbeddingsIntegrationTests):
    pytestmark = ASYNC_SUITE

    @property
    def embeddings_class(self) -> type[TextEmbeddings]:
        return TextEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"text_model": TEXT_MODEL}


class TestJointEmbeddingsUnit(_TinyClip, EmbeddingsUnitTests):
    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        path = str(self.clip_dir)
        return {"VISTARAG_JOINT_MODEL": path}, {}, {"model_name": path}


class TestJointEmbeddingsIntegration(_TinyClip, EmbeddingsIntegrationTests):
    pytestmark = ASYNC_SUITE


# ---- beyond the standard suites: the vectors are the ones the knowledge base stores ----------


def test_text_embeddings_are_normalised_minilm_vectors() -> None:
    emb = TextEmbeddings(text_model=TEXT_MODEL)
    docs = emb.embed_documents(["The inspection covers brakes and tyres.", "Quarterly revenue."])
    query = emb.embed_query("tyre inspection")
    assert len(query) == 384 and all(len(d) == 384 for d in docs)
    assert np.allclose(np.linalg.norm(np.array(docs), axis=1), 1.0, atol=1e-4)
    assert abs(float(np.linalg.norm(query)) - 1.0) < 1e-4
    sims = np.array(docs) @ np.array(query)
    assert sims[0] > sims[1]  # a real sentence model, not a hash: the related text wins


def test_joint_embeddings_are_the_16_dim_clip_text_side(tiny_clip_dir: Path) -> None:
    emb = JointEmbeddings(joint_model=str(tiny_clip_dir))
    vec = emb.embed_query("a red chart")
    assert len(vec) == 16
    assert abs(float(np.linalg.norm(vec)) - 1.0) < 1e-4
    assert emb.embed_documents(["a red chart"])[0] == pytest.approx(vec, abs=1e-5)


def test_joint_embeddings_refuse_text_bridge_mode() -> None:
    with pytest.raises(VistaRAGError, match="text-bridge"):
        joint_embeddings(Settings(_env_file=None, joint_model="none"))
