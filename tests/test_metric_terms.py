"""A question that names a metric finds the statement it is computed from (real MiniLM, real
Qdrant local mode, real PyMuPDF): "free cash flow conversion" shares few words with a cash flow
statement, but its line items do."""

from __future__ import annotations

from pathlib import Path

import pymupdf
import pytest

from vistarag.agent import query as query_module
from vistarag.agent.engine import Engine
from vistarag.agent.metric_terms import line_items
from vistarag.agent.qdrant import close_all
from vistarag.agent.settings import Settings

PROSE = [  # pages 1-5: what an annual report says around its statements
    "Globex's online store improved its conversion rate this year, and more customers ordered "
    "through the mobile app. Demand for industrial fasteners grew with construction activity.",
    "Globex opened two distribution centres and improved the flow of goods through its "
    "warehouses. Freight costs rose in the second half, and we renegotiated carrier contracts.",
    "Our profile: Globex designs and sells fasteners, anchors and fixings to builders and "
    "manufacturers. We compete on price, availability and the breadth of our catalogue.",
    "Risk factors: steel prices, interest rates and the health of the construction market "
    "affect our results. A cyber incident could disrupt our operations and our margins.",
    "Employees: at year end Globex had 2,400 employees. We improved safety training and days "
    "lost to injury fell for the third year in a row.",
]
STATEMENTS = {  # pages 6-8
    "CONSOLIDATED STATEMENTS OF OPERATIONS": [
        ("Net sales", "9,000", "9,900"), ("Cost of sales", "6,000", "6,500"),
        ("Gross profit", "3,000", "3,400"),
        ("Selling, general and administrative", "2,200", "2,380"),
        ("Operating income", "800", "1,020"), ("Interest expense", "(40)", "(35)"),
        ("Net income", "500", "560"),
    ],
    "CONSOLIDATED BALANCE SHEETS": [
        ("Cash and cash equivalents", "900", "1,050"),
        ("Accounts receivable, net", "1,200", "1,300"), ("Inventories", "1,500", "1,610"),
        ("Total current assets", "3,600", "3,960"), ("Accounts payable", "1,100", "1,377"),
        ("Total current liabilities", "1,400", "1,500"), ("Long-term debt", "2,000", "1,800"),
        ("Total stockholders' equity", "3,100", "3,500"),
    ],
    "CONSOLIDATED STATEMENTS OF CASH FLOWS": [
        ("Net income", "500", "560"), ("Depreciation and amortization", "120", "130"),
        ("Net cash provided by operating activities", "700", "810"),
        ("Purchases of property and equipment", "(200)", "(190)"),
        ("Net cash used in investing activities", "(260)", "(240)"),
    ],
}
OPERATIONS, BALANCE_SHEET, CASH_FLOWS = 6, 7, 8
QUESTIONS = {
    "Does Globex have an improving operating margin profile?": OPERATIONS,
    "Is Globex's free cash flow conversion improving?": CASH_FLOWS,
    "What is Globex's current ratio?": BALANCE_SHEET,
    "Is Globex's return on equity improving?": BALANCE_SHEET,
}


def _right(page: pymupdf.Page, x: float, y: float, text: str) -> None:
    """Figures are right-aligned in their column, as statements print them."""
    page.insert_text((x - pymupdf.get_text_length(text, fontsize=9), y), text, fontsize=9)


def _annual_report(
    path: Path, prose: list[str] = PROSE, statements: dict[str, list] = STATEMENTS
) -> Path:
    doc = pymupdf.open()
    for text in prose:
        doc.new_page().insert_textbox(pymupdf.Rect(60, 60, 540, 400), text, fontsize=10)
    for title, rows in statements.items():
        page = doc.new_page()
        page.insert_text((200, 60), "GLOBEX FASTENERS, INC.", fontsize=10)
        page.insert_text((160, 74), title, fontsize=10)
        page.insert_text((230, 88), "(in millions)", fontsize=9)
        for right, year in ((450, "2021"), (530, "2022")):
            _right(page, right, 110, year)
        for i, (label, before, after) in enumerate(rows):
            y = 126 + 14 * i
            page.insert_text((40, y), label, fontsize=9)
            _right(page, 450, y, before)
            _right(page, 530, y, after)
    doc.save(path)
    return path


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    root = tmp_path_factory.mktemp("metrics")
    yield _engine_over(root, _annual_report(root / "globex-annual-report.pdf"))
    close_all()


def _engine_over(root: Path, report: Path) -> Engine:
    settings = Settings(home=root / "home", joint_model="none", synthesizer="extractive",
                        checkpointer="memory", _env_file=None)
    eng = Engine(settings)
    assert eng.ingestor().ingest_paths([report]).count("added") == 1
    return eng


def test_metrics_map_to_the_line_items_they_are_computed_from() -> None:
    assert line_items("Does Adobe have an improving operating margin profile as of FY2022?") == [
        "operating income income from operations total revenue net sales"
    ]
    (fcf,) = line_items("Has free cash flow conversion improved?")
    assert "net cash provided by operating activities" in fcf and "capital expenditures" in fcf
    assert "accounts payable" in line_items("What is Amazon's FY2017 DPO?")[0]
    assert len(line_items("Using the income statement, what is the gross margin?")) == 2
    assert line_items("How many stores did Best Buy open?") == []
    assert line_items("The depot was damaged") == []  # "dpo" only as a word


def _top_pages(engine: Engine) -> dict[str, int | None]:
    return {q: engine.find(q, k=3)[0].page for q in QUESTIONS}


def test_a_metric_question_finds_the_statement_it_is_computed_from(engine: Engine) -> None:
    assert _top_pages(engine) == QUESTIONS


def test_without_the_line_items_prose_wins_some(engine: Engine, monkeypatch) -> None:
    """The control: without the metrics' line items, prose that shares the question's words
    ("improving", "conversion", "margins") outranks statements, so the test above measures the
    line items, not the corpus."""
    monkeypatch.setattr(query_module, "line_items", lambda text: [])
    pages = _top_pages(engine)
    assert sum(pages[q] == want for q, want in QUESTIONS.items()) <= len(QUESTIONS) // 2, pages


def test_the_offline_answer_quotes_the_rows_a_metric_is_computed_from(engine: Engine) -> None:
    """Without a language model, "is the operating margin improving?" is answered with the
    operating income and net sales rows, quoted first with their citation, before any prose
    that shares the question's words (a further quote may follow: which one depends on
    near-ties between passages, not on what the question asks)."""
    from vistarag.agent.synth import ExtractiveSynthesizer, SynthesisRequest

    expected = {
        "Does Globex have an improving operating margin profile?": [
            "Operating income: 2021 = 800; 2022 = 1,020", "Net sales: 2021 = 9,000; 2022 = 9,900"],
        "Is Globex's free cash flow conversion improving?": [
            "Net cash provided by operating activities: 2021 = 700; 2022 = 810",
            "Purchases of property and equipment: 2021 = (200); 2022 = (190)"],
    }
    for question, rows in expected.items():
        hits = engine.find(question, k=5)
        answer = ExtractiveSynthesizer().answer_text(SynthesisRequest(question=question, hits=hits))
        quoted = [line for line in answer.splitlines() if line.startswith("- ")]
        assert quoted[: len(rows)] == [f'- "{row}" [1]' for row in rows], answer


MDNA_TABLES = {  # a 10-K's MD&A prints the same line items, with the growth rates asked for
    "Net Sales": [
        ("Net sales", "9,000", "9,900"),
        ("Year-over-year Percentage Growth of net sales", "8%", "10%"),
        ("Net sales mix: Online", "40%", "45%"),
    ],
    "Operating Expenses": [
        ("Net income", "500", "560"),
        ("Year-over-year Percentage Growth of net income", "4%", "12%"),
    ],
}
STATEMENT_QUESTIONS = {  # the question names the statement it wants the figures from
    "Using the income statement, what is Globex's year-over-year change in net sales from "
    "2021 to 2022?": 3,
    "According to the cash flow statement, what is the year-over-year growth of Globex's net "
    "income?": 4,
}


@pytest.fixture(scope="module")
def filing(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """MD&A tables (pages 1-2) and two statements (3: operations, 4: cash flows)."""
    root = tmp_path_factory.mktemp("statements")
    tables = {**MDNA_TABLES,
              "CONSOLIDATED STATEMENTS OF OPERATIONS": STATEMENTS[
                  "CONSOLIDATED STATEMENTS OF OPERATIONS"],
              "CONSOLIDATED STATEMENTS OF CASH FLOWS": STATEMENTS[
                  "CONSOLIDATED STATEMENTS OF CASH FLOWS"]}
    yield _engine_over(root, _annual_report(root / "globex-10k.pdf", prose=[], statements=tables))
    close_all()


def test_a_named_statement_ranks_the_table_titled_as_it_first(filing: Engine) -> None:
    pages = {q: filing.find(q, k=3)[0].page for q in STATEMENT_QUESTIONS}
    assert pages == STATEMENT_QUESTIONS


def test_without_the_statement_titles_the_mdna_table_wins(filing: Engine, monkeypatch) -> None:
    """The control: the MD&A table shares more of the question's words ("year-over-year")."""
    monkeypatch.setattr(query_module, "named_statements", lambda text: [])
    pages = {q: filing.find(q, k=3)[0].page for q in STATEMENT_QUESTIONS}
    assert all(pages[q] != want for q, want in STATEMENT_QUESTIONS.items()), pages


def test_statement_titles_are_read_from_table_chunks_only() -> None:
    from vistarag.agent.ingest.tables import chunk_title
    from vistarag.agent.metric_terms import named_statements, titled_as

    assert named_statements("Based on the P&L and the balance sheet, what is ROE?") == [
        "income statement", "balance sheet"]
    table = "ACME INC.\nCONSOLIDATED STATEMENTS OF EARNINGS\nColumns: 2022 | 2023\nNet sales: ..."
    assert titled_as(chunk_title(table), ["income statement"])
    assert not titled_as(chunk_title(table), ["cash flow statement"])
    lead_in = ("Stock-based compensation costs included in our Consolidated Statements of "
               "Income were as follows:\nColumns: 2022 | 2023\nCost of revenue: ...")
    assert not titled_as(chunk_title(lead_in), ["income statement"])
    plain = "Table of Contents\nACME INC.\nCONSOLIDATED BALANCE SHEETS\n(In millions)\nCash 1,050"
    assert titled_as(chunk_title(plain), ["balance sheet"])  # a page's text, not a table chunk
    index = ("INDEX TO CONSOLIDATED FINANCIAL STATEMENTS\nConsolidated Statements of Operations"
             "\nConsolidated Balance Sheets\nConsolidated Statements of Cash Flows")
    assert not titled_as(chunk_title(index), ["balance sheet"])  # it lists them all
    prose = "See the consolidated statements of operations in Item 8 for net sales by segment."
    assert chunk_title(prose) == "" and not titled_as(chunk_title(prose), ["income statement"])
