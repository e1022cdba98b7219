"""Retrieval and answer quality end to end on generated filings (real MiniLM, real Qdrant local
mode, real PyMuPDF): the year a question names picks the document, hits are distinct evidence,
an off-topic question is not answered, sidecars are skipped unless included."""

from __future__ import annotations

from pathlib import Path

import pymupdf
import pytest

from vistarag.agent.engine import Engine
from vistarag.agent.evidence import same_evidence
from vistarag.agent.qdrant import close_all
from vistarag.agent.rerank import is_relevant
from vistarag.agent.settings import Settings
from vistarag.agent.synth import ExtractiveSynthesizer, SynthesisRequest

SIZE = 9
NARRATIVE = (
    "Our warehouses ship parcels to customers across the region. Demand for industrial "
    "fasteners grew with construction activity, and we opened two distribution centres."
)


def _right(page: pymupdf.Page, x: float, y: float, text: str) -> None:
    page.insert_text((x - pymupdf.get_text_length(text, fontsize=SIZE), y), text, fontsize=SIZE)


def filing(path: Path, year: int, payable: str, income: str) -> Path:
    """A small 10-K: cover page, a narrative page, a balance sheet and an income statement.

    Both years' filings have the same layout and wording; only the cover, the column years and
    the figures differ, as with a company's consecutive annual reports. The file name does not
    say the year.
    """
    doc = pymupdf.open()
    cover = doc.new_page()
    y = 60
    for line in ["UNITED STATES", "SECURITIES AND EXCHANGE COMMISSION", "FORM 10-K",
                 "ANNUAL REPORT PURSUANT TO SECTION 13 OR 15(d) OF THE SECURITIES EXCHANGE ACT",
                 f"For the fiscal year ended December 31, {year}",
                 "GLOBEX FASTENERS, INC.",
                 "(Exact name of registrant as specified in its charter)"]:
        cover.insert_text((60, y), line, fontsize=10)
        y += 16
    story = doc.new_page()
    story.insert_textbox(pymupdf.Rect(60, 60, 540, 300), NARRATIVE, fontsize=10)
    for title, rows in (
        ("CONSOLIDATED BALANCE SHEETS", [("Current liabilities:", None, None),
                                         ("Accounts payable", "$ 1,100", payable),
                                         ("Accrued expenses", "300", "310"),
                                         ("Total current liabilities", "1,400", "1,500")]),
        ("CONSOLIDATED STATEMENTS OF OPERATIONS", [("Net sales", "$ 9,000", "$ 9,900"),
                                                   ("Cost of sales", "6,000", "6,500"),
                                                   ("Operating income", "800", income),
                                                   ("Net income", "$ 500", "$ 560")]),
    ):
        page = doc.new_page()
        page.insert_text((200, 60), "GLOBEX FASTENERS, INC.", fontsize=10)
        page.insert_text((200, 74), title, fontsize=10)
        page.insert_text((230, 88), "(in millions)", fontsize=SIZE)
        _right(page, 520, 110, "Year Ended December 31,")
        _right(page, 450, 122, str(year - 1))
        _right(page, 530, 122, str(year))
        y = 138
        for label, a, b in rows:
            page.insert_text((40, y), label, fontsize=SIZE)
            if a:
                _right(page, 450, y, a)
                _right(page, 530, y, b)
            y += 14
    doc.save(path)
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Engine, dict[int, str]]:
    root = tmp_path_factory.mktemp("filings")
    docs = root / "docs"
    docs.mkdir()
    files = {
        2018: filing(docs / "globex-annual-a.pdf", 2018, "$ 1,234", "910"),
        2019: filing(docs / "globex-annual-b.pdf", 2019, "$ 1,377", "1,020"),
    }
    (docs / "globex-annual-a.md").write_text("# Globex annual report (Markdown export)\n"
                                             + NARRATIVE)
    settings = Settings(home=root / "home", joint_model="none", synthesizer="extractive",
                        checkpointer="memory", _env_file=None)
    engine = Engine(settings)
    report = engine.ingestor().ingest_paths([docs])
    assert report.count("added") == 2, report.results
    skipped = [r for r in report.results if r.status == "skipped"]
    assert [Path(r.path).name for r in skipped] == ["globex-annual-a.md"]
    assert "sidecar of globex-annual-a.pdf" in skipped[0].message
    yield engine, {y: str(p.resolve()) for y, p in files.items()}
    close_all()


@pytest.mark.parametrize("year", [2018, 2019])
def test_the_year_a_question_names_ranks_that_years_filing_first(corpus, year: int) -> None:
    engine, sources = corpus
    for question in (f"What were Globex's accounts payable in FY{year}?",
                     f"Globex operating income for fiscal year {year}"):
        hits = engine.find(question, k=5)
        assert hits[0].source == sources[year], [(h.source, h.page) for h in hits]
        assert hits[0].extra["doc"]["fiscal_year"] == year
        assert hits[0].extra["doc"]["company"] == "Globex Fasteners, Inc."


def test_statement_rows_are_found_by_their_line_item(corpus) -> None:
    engine, sources = corpus
    hits = engine.find("accounts payable 2019", k=3)
    top = hits[0]
    assert (top.source, top.page) == (sources[2019], 3)
    assert "Accounts payable (Current liabilities): 2018 = $1,100; 2019 = $1,377" in top.text


def test_hits_are_distinct_pieces_of_evidence(corpus) -> None:
    engine, _ = corpus
    for question in ("Globex balance sheet", "distribution centres and warehouses",
                     "operating income"):
        hits = engine.find(question, k=8)
        assert hits
        for i, a in enumerate(hits):
            assert not any(same_evidence(a, b) for b in hits[i + 1 :]), (a.id, question)
        assert any(len(h.extra["modalities"]) > 1 for h in hits)  # page + text collapsed


def test_off_topic_question_gets_not_found(corpus) -> None:
    engine, _ = corpus
    question = "What is a good recipe for banana bread with walnuts?"
    hits = engine.find(question, k=5)
    assert hits and not is_relevant(hits, question)
    answer = ExtractiveSynthesizer().synthesize(SynthesisRequest(question=question, hits=hits))
    assert answer.answer.startswith("Your documents do not appear to contain this")
    assert "globex-annual" in answer.answer  # the closest hits are shown
    on_topic = "What were Globex's accounts payable in FY2019?"
    hits = engine.find(on_topic, k=5)
    assert is_relevant(hits, on_topic)
    result = ExtractiveSynthesizer().synthesize(SynthesisRequest(question=on_topic, hits=hits))
    assert "Globex Fasteners, Inc. 10-K FY2019" in result.answer  # says which document
    assert [c.n for c in result.citations] == list(range(1, len(result.citations) + 1))


def test_sidecar_is_ingested_when_included(tmp_path: Path, corpus) -> None:
    engine, _ = corpus
    folder = tmp_path / "pair"
    folder.mkdir()
    (folder / "memo.pdf").write_bytes(Path(corpus[1][2018]).read_bytes())
    (folder / "memo.md").write_text("The sidecar memo mentions zebra logistics.")
    report = engine.ingestor("sidecars").ingest_paths([folder], include=["*.md"])
    assert [(Path(r.path).name, r.status) for r in report.results if r.status == "added"] == [
        ("memo.md", "added")
    ]
    assert engine.find("zebra logistics", kb="sidecars", k=1)[0].source.endswith("memo.md")


def test_a_follow_up_for_the_year_before_answers_from_that_years_filing(corpus) -> None:
    """"And the year before?" searches the previous question with its year moved back, and the
    offline answer quotes the statement row that question names, from that year's filing."""
    from langgraph.checkpoint.memory import InMemorySaver

    from vistarag.graphs.builder import build_graph
    from vistarag.graphs.runner import run_turn

    engine, sources = corpus
    graph = build_graph(engine=engine, checkpointer=InMemorySaver())
    first = run_turn(graph, "What was Globex's operating income in fiscal 2019?",
                     thread_id="years")
    assert '"Operating income: 2019 = 1,020"' in first.answer.splitlines()[1]  # the year asked
    second = run_turn(graph, "And how much was it the year before?", thread_id="years")
    assert second.sources[0].source == sources[2018], [s.source for s in second.sources]
    assert '"Operating income: 2018 = 910"' in second.answer.splitlines()[1]  # not the 800 of
    # the 2019 filing's 2018 column: the 2018 filing answers
