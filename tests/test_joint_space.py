"""The joint image-text space (tiny CLIP, real loading code) and the text-bridge fallback."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.tiny_clip import build_tiny_clip_hub_layout
from vistarag.agent.embeddings import JointModelStatus, load_joint_embedder
from vistarag.agent.engine import Engine
from vistarag.agent.index import field_filter
from vistarag.agent.models import TEXT_BRIDGE, Models
from vistarag.agent.notices import pending_notices
from vistarag.agent.settings import Settings
from vistarag.agent.sparse import LEXICAL_VECTOR


def gradient(
    c0: tuple[int, int, int],
    c1: tuple[int, int, int],
    vertical: bool = False,
    size: tuple[int, int] = (160, 120),
) -> Image.Image:
    """A smooth two-colour gradient: no text for OCR to find, so only its pixels identify it."""
    w, h = size
    t = np.linspace(0.0, 1.0, h if vertical else w)[:, None]
    ramp = (1 - t) * np.array(c0) + t * np.array(c1)
    arr = ramp[:, None, :].repeat(w, 1) if vertical else ramp[None, :, :].repeat(h, 0)
    return Image.fromarray(arr.astype(np.uint8))


GRADIENTS = {
    "sunset": ((255, 80, 0), (40, 0, 120), False),
    "meadow": ((0, 160, 40), (250, 240, 60), True),
    "steel": ((20, 20, 20), (230, 230, 240), False),
}


@pytest.fixture
def gradient_files(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name, (c0, c1, vertical) in GRADIENTS.items():
        out[name] = tmp_path / f"{name}.png"
        gradient(c0, c1, vertical).save(out[name])
    return out


@pytest.fixture
def clean_joint_cache():
    """The loader caches per spec and remembers its notice: isolate tests that inspect them."""
    load_joint_embedder.cache_clear()
    JointModelStatus.notice, JointModelStatus.shown = None, False
    JointModelStatus.by_spec.clear()
    yield
    load_joint_embedder.cache_clear()
    JointModelStatus.notice, JointModelStatus.shown = None, False
    JointModelStatus.by_spec.clear()


# ---- joint mode ------------------------------------------------------------------------------


def test_tiny_clip_images_and_texts_share_one_normalised_space(tiny_clip_dir: Path) -> None:
    embedder = load_joint_embedder(str(tiny_clip_dir))
    assert embedder is not None and embedder.accepts_images
    assert embedder.dim == 16
    images = [gradient(*spec) for spec in GRADIENTS.values()]
    img_vecs = embedder.encode_document(images)
    txt_vecs = embedder.encode_query(["a red chart", "a photo of a cat"])
    assert img_vecs.shape == (3, 16) and txt_vecs.shape == (2, 16)
    assert img_vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(img_vecs, axis=1), 1.0, atol=1e-5)
    assert np.allclose(np.linalg.norm(txt_vecs, axis=1), 1.0, atol=1e-5)
    # different pictures give different vectors; the same picture the same one
    assert not np.allclose(img_vecs[0], img_vecs[1], atol=1e-3)
    again = embedder.encode_query([images[0]])[0]
    assert float(again @ img_vecs[0]) > 0.9999


def test_ingested_image_gets_joint_and_text_vectors(
    joint_settings: Settings, tiny_clip_dir: Path, gradient_files: dict[str, Path]
) -> None:
    engine = Engine(joint_settings)
    result = engine.ingestor().ingest_file(gradient_files["sunset"])
    assert result.status == "added", result.message
    kb = engine.kb()
    points = list(kb.scroll(field_filter(doc_id=result.doc_id)))
    images = [p for p in points if p.payload["modality"] == "image"]
    assert len(images) == 1
    (stored,) = kb.retrieve([images[0].id], with_vectors=True)
    assert set(stored.vector) == {"joint", "text", LEXICAL_VECTOR}  # lexical: its title words
    assert len(stored.vector["joint"]) == 16
    assert len(stored.vector["text"]) == 384
    # the stored joint vector is the image's own embedding
    embedder = load_joint_embedder(str(tiny_clip_dir))
    own = embedder.encode_document([Image.open(gradient_files["sunset"]).convert("RGB")])[0]
    assert float(np.dot(own, stored.vector["joint"])) > 0.999
    assert engine.blobs.exists(stored.payload["blob"])


def test_image_query_finds_the_same_image_first(
    joint_settings: Settings, gradient_files: dict[str, Path]
) -> None:
    engine = Engine(joint_settings)
    report = engine.ingestor().ingest_paths(gradient_files.values())
    assert [r.status for r in report.results] == ["added"] * len(gradient_files)
    for name, path in gradient_files.items():
        query = engine.load_query_image(path)
        encoded = engine.encode("", [query])
        assert encoded.vectors.joint and not encoded.vectors.text  # pixels only: no OCR text
        hits = engine.find("", [query], k=3)
        assert hits, name
        assert hits[0].source == str(path.resolve()), (name, [h.source for h in hits])
        assert hits[0].modality == "image"
        assert hits[0].extra["dense"]["joint"] > 0.999


def test_collection_metadata_records_the_joint_model(
    joint_settings: Settings, tiny_clip_dir: Path, gradient_files: dict[str, Path]
) -> None:
    engine = Engine(joint_settings)
    assert engine.ingestor().ingest_file(gradient_files["steel"]).status == "added"
    meta = engine.kb().metadata()
    assert meta["joint_model"] == str(tiny_clip_dir)
    assert meta["joint_dim"] == 16
    assert meta["text_dim"] == 384
    assert engine.kb().vector_names() == {"text", "joint", LEXICAL_VECTOR}
    assert engine.kb().stats()["joint_model"] == str(tiny_clip_dir)


# ---- text-bridge mode ------------------------------------------------------------------------


def test_missing_joint_model_offline_falls_back_quickly(clean_joint_cache, monkeypatch) -> None:
    from huggingface_hub import try_to_load_from_cache

    if isinstance(
        try_to_load_from_cache("sentence-transformers/clip-ViT-B-32", "config.json"), str
    ):
        pytest.skip("clip-ViT-B-32 is in the local cache; the fallback cannot be observed")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    s = Settings(_env_file=None, joint_model="clip-ViT-B-32")
    started = time.perf_counter()
    embedder = load_joint_embedder(s.joint_model, s.device, s.hub_probe_timeout_s)
    elapsed = time.perf_counter() - started
    assert embedder is None
    assert elapsed < 10, f"took {elapsed:.1f} s offline"
    notice = JointModelStatus.notice or ""
    assert "text-bridge" in notice
    assert "HF_HUB_OFFLINE" in notice  # says why
    assert "VISTARAG_JOINT_MODEL" in notice and "SentenceTransformer" in notice  # how to enable
    assert "clip-ViT-B-32" in notice


def test_text_bridge_models_record_and_notice_once_per_kb(
    clean_joint_cache, monkeypatch, capsys, tmp_path: Path
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    models = Models(Settings(_env_file=None, home=tmp_path, joint_model="clip-ViT-B-32"))
    assert models.text_bridge
    record = models.record()
    assert record["joint_model"] == TEXT_BRIDGE and record["joint_dim"] == 0
    assert record["text_dim"] == 384
    assert capsys.readouterr().err == ""  # the core prints nothing; front ends show notices
    assert "text-bridge" in (models.joint_notice or "")
    (notice,) = pending_notices(models, "docs")
    assert "text-bridge" in notice
    again = Models(Settings(_env_file=None, home=tmp_path, joint_model="clip-ViT-B-32"))
    assert pending_notices(again, "docs") == []  # remembered in the data dir, not per process
    assert pending_notices(again, "other") == [notice]  # once per knowledge base


def test_joint_none_is_text_bridge_without_notice(clean_joint_cache, settings: Settings) -> None:
    assert load_joint_embedder("none") is None
    assert JointModelStatus.notice is None
    engine = Engine(settings)
    assert engine.models.text_bridge


def test_text_bridge_collection_has_only_text_vectors(settings: Settings, screenshot: Path) -> None:
    engine = Engine(settings)
    assert engine.ingestor().ingest_file(screenshot).status == "added"
    kb = engine.kb()
    assert kb.vector_names() == {"text", LEXICAL_VECTOR}
    assert kb.metadata()["joint_model"] == TEXT_BRIDGE
    ids = [p.id for p in kb.scroll()]
    for point in kb.retrieve(ids, with_vectors=True):
        assert set(point.vector) == {"text", LEXICAL_VECTOR}
    # the query side matches: text vectors only
    encoded = engine.encode("certificate expired")
    assert len(encoded.vectors.text) == 1 and not encoded.vectors.joint
    assert engine.find("certificate expired", k=1)[0].source == str(screenshot.resolve())


def test_hub_layout_of_clip_vit_b_32_loads_through_the_same_code(tmp_path: Path) -> None:
    """The default joint model's on-disk layout (legacy CLIPModel module) loads and embeds."""
    path = build_tiny_clip_hub_layout(tmp_path / "clip-ViT-B-32")
    embedder = load_joint_embedder(str(path))
    assert embedder is not None and embedder.accepts_images
    image_vec = embedder.encode_document([Image.new("RGB", (64, 48), "red")])
    text_vec = embedder.encode_query(["a red square"])
    assert image_vec.shape == text_vec.shape == (1, 16)
    assert abs(float((image_vec**2).sum()) - 1.0) < 1e-4


def test_unloadable_text_model_is_a_clear_error() -> None:
    from vistarag.agent.embeddings import load_text_embedder
    from vistarag.agent.errors import VistaRAGError

    with pytest.raises(VistaRAGError, match="VISTARAG_TEXT_MODEL=packaged"):
        load_text_embedder("no-such-org/no-such-model")
