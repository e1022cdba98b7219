"""The Ray ingest stores the same points as the local one (ids, payloads, vectors), and skips
unchanged files on a re-run. A real local Ray instance (2 CPUs), real models, real Qdrant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pymupdf
import pytest

from tests.fixtures_media import SCREENSHOT_LINES, make_screenshot
from vistarag.agent.engine import Engine
from vistarag.agent.index import KnowledgeBase
from vistarag.agent.ingest.discover import select
from vistarag.agent.settings import Settings

ray = pytest.importorskip("ray")
ray_ingest = pytest.importorskip("vistarag.agent.ingest.ray_ingest")


def make_corpus(root: Path) -> Path:
    """A 2-page PDF, a markdown file and a screenshot with text."""
    root.mkdir(parents=True)
    doc = pymupdf.open()
    for n, text in enumerate(["Quarterly revenue rose 12 percent to 4.2 million euros.",
                              "The warehouse in Lyon closes on Fridays at noon."], start=1):
        page = doc.new_page()
        page.insert_text((72, 72), f"Page {n}", fontsize=18)
        page.insert_text((72, 120), text, fontsize=11)
    doc.save(root / "report.pdf")
    (root / "notes.md").write_text(
        "# Field notes\n\nThe pump at station 7 needs a new seal.\n\n"
        "## Follow-up\n\nOrder the seal from the Grenoble supplier before March.\n"
    )
    make_screenshot(root / "settings_screen.png", SCREENSHOT_LINES)
    return root


def stored(kb: KnowledgeBase) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    return {p.id: (p.payload, p.vector or {}) for p in kb.scroll(with_vectors=True)}


def same_vector(a: Any, b: Any) -> bool:
    if isinstance(a, list):
        return np.allclose(np.asarray(a), np.asarray(b), atol=1e-5)
    return a == b  # sparse: the same indices and values (computed by the same code)


@pytest.fixture(scope="module")
def ray_instance():
    """One local Ray instance for the module (starting one takes seconds)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield ray
    ray.shutdown()


def test_ray_ingest_stores_the_points_a_local_ingest_stores(
    tmp_path: Path, tiny_clip_dir: Path, ray_instance
) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    settings = Settings(home=tmp_path / "home", joint_model=str(tiny_clip_dir),
                        synthesizer="extractive", checkpointer="memory", _env_file=None)
    engine = Engine(settings)
    options = ray_ingest.RayOptions(actors=2)

    # Ray first, so the blobs its points cite were written by the Ray path.
    by_ray = ray_ingest.ingest_with_ray(engine.ingestor("ray"), select([corpus]), options)
    assert [r.status for r in by_ray.results] == ["added"] * 3, by_ray.results
    local = engine.ingestor("local").ingest_paths([corpus])
    assert [r.status for r in local.results] == ["added"] * 3, local.results
    assert by_ray.summary()["points"] == local.summary()["points"]
    assert by_ray.summary()["pages"] == local.summary()["pages"] == 2

    ray_points, local_points = stored(engine.kb("ray")), stored(engine.kb("local"))
    assert set(ray_points) == set(local_points)
    assert {p["kind"] for p, _ in ray_points.values()} == {"pdf", "text", "image"}
    for pid, (payload, vectors) in ray_points.items():
        local_payload, local_vectors = local_points[pid]
        assert payload == local_payload, pid
        assert set(vectors) == set(local_vectors), pid
        for space, vec in vectors.items():
            assert same_vector(vec, local_vectors[space]), (pid, space)
        if payload.get("blob"):
            assert engine.blobs.has(payload["blob"]), payload["blob"]
    assert sum(1 for p, _ in ray_points.values() if p.get("complete")) == 3

    again = ray_ingest.ingest_with_ray(engine.ingestor("ray"), select([corpus]), options)
    assert [r.status for r in again.results] == ["unchanged"] * 3
    assert stored(engine.kb("ray")).keys() == ray_points.keys()


def test_a_file_changed_since_the_ray_ingest_is_replaced(
    tmp_path: Path, settings: Settings, ray_instance
) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    engine = Engine(settings)
    options = ray_ingest.RayOptions(actors=1)
    ray_ingest.ingest_with_ray(engine.ingestor(), select([corpus]), options)
    before = stored(engine.kb())
    (corpus / "notes.md").write_text("# Field notes\n\nThe pump at station 9 is fine.\n")
    (corpus / "empty.txt").write_text("")
    report = ray_ingest.ingest_with_ray(engine.ingestor(), select([corpus]), options)
    statuses = {Path(r.path).name: r.status for r in report.results}
    assert statuses == {"empty.txt": "error", "notes.md": "replaced", "report.pdf": "unchanged",
                        "settings_screen.png": "unchanged"}
    after = stored(engine.kb())
    texts = {p["text"] for p, _ in after.values() if p["kind"] == "text"}
    assert any("station 9" in t for t in texts)
    assert not any("station 7" in t for t in texts)
    notes = {pid for pid, (p, _) in before.items() if p["kind"] == "text"}
    assert not notes & after.keys()  # the old version's points went
    assert before.keys() - notes <= after.keys()  # the unchanged files' points stayed


def test_an_actor_runs_the_text_model_on_the_cpus_it_was_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An actor given one CPU puts one text at a time through the model, not one per core of
    its node (the stage itself, called without Ray)."""
    note = tmp_path / "note.md"
    note.write_text("The pump at station 7 needs a new seal before March.")
    settings = Settings(_env_file=None, home=tmp_path / "home", joint_model="none",
                        synthesizer="extractive")
    plan = Engine(settings).ingestor().plan(note)
    stage = ray_ingest.ExtractEmbed(settings, model_runs=1)
    asked = []
    encode = stage.models.text_encoder.encode_document

    def spy(items, batch_size=32, max_tokens=None, runs=None):  # noqa: ANN001, ANN202
        asked.append(runs)
        return encode(items, batch_size, max_tokens, runs)

    monkeypatch.setattr(stage.models.text_encoder, "encode_document", spy)
    outcome = stage.one(0, plan)
    assert not outcome.error and outcome.result is not None and outcome.result.points > 0
    assert asked and set(asked) == {1}
