"""Retrieval and answer quality, pure parts: metadata rules, table rows, word repair, evidence
collapse, citation renumbering, snippets, follow-ups."""

from __future__ import annotations

from pathlib import Path

import pymupdf

from vistarag.agent import docmeta
from vistarag.agent.citations import Renumberer, best_snippet, renumber
from vistarag.agent.evidence import collapse, same_evidence
from vistarag.agent.followup import page_target, referenced_citation, resolve, swap_period
from vistarag.agent.ingest.chunking import repair, vocabulary, without_amounts
from vistarag.agent.ingest.discover import select
from vistarag.agent.ingest.pdf import extract_pdf
from vistarag.agent.ingest.tables import find_tables, lines_from_words, table_chunks
from vistarag.agent.types import Hit

COVER = """UNITED STATES
SECURITIES AND EXCHANGE COMMISSION
FORM 10-Q
QUARTERLY REPORT PURSUANT TO SECTION 13 OR 15(d) OF THE SECURITIES EXCHANGE ACT OF 1934
For the quarterly period ended October 28, 2023
Commission File Number: 1-1234
NORTHWIND TRADERS HOLDINGS, INC.
(Exact name of registrant as specified in its charter)
Title of each class
Trading Symbol
NWT
"""


def test_cover_page_gives_company_form_and_fiscal_period() -> None:
    body = "Results for the third quarter of fiscal 2024 were strong. In fiscal 2024 we grew."
    meta = docmeta.describe("nw-filing.pdf", COVER, {}, body)
    assert meta.company == "Northwind Traders Holdings, Inc."
    assert meta.ticker == "NWT"
    assert (meta.form, meta.fiscal_year, meta.fiscal_period) == ("10-Q", 2024, "Q3")
    assert meta.period_end == "2023-10-28"
    assert docmeta.company_keys(meta.company, meta.ticker) == ["northwind traders", "northwind",
                                                                "nwt"]
    annual = docmeta.describe(
        "x.pdf", "FORM 10-K\nANNUAL REPORT PURSUANT TO SECTION 13\nFor the fiscal year ended "
        "January 31, 2021\nCONTOSO CORP\n(Exact name of registrant as specified in its charter)",
    )
    assert (annual.form, annual.fiscal_year, annual.fiscal_period) == ("10-K", 2021, "FY")
    assert annual.title == "Contoso Corp 10-K FY2021"
    # no cover at all: the file name still says something
    named = docmeta.describe("ACME_FY22_Q3_earnings.pdf", "Quarterly results")
    assert (named.fiscal_year, named.fiscal_period) == (2022, "Q3")


def test_query_scope_filters_only_when_unambiguous() -> None:
    catalog = {
        "a17": {"company": "Acme Inc.", "fiscal_year": 2017, "form": "10-K"},
        "a19": {"company": "Acme Inc.", "fiscal_year": 2019, "form": "10-K"},
        "z19": {"company": "Zenith Corp", "fiscal_year": 2019, "form": "10-K"},
    }
    assert docmeta.scope("What was Acme's FY2017 revenue?", catalog).doc_ids == ["a17"]
    assert docmeta.scope("Acme revenue", catalog).doc_ids == ["a17", "a19"]
    # a lower-case word or a year alone is no filter (issue 19): those documents are boosted
    assert docmeta.scope("acme revenue", catalog).boosted == ["a17", "a19"]
    assert docmeta.scope("revenue in 2019", catalog).doc_ids is None
    assert docmeta.scope("revenue in 2019", catalog).boosted == ["a19", "z19"]
    # a year no document is about does not empty the search
    assert docmeta.scope("Acme revenue in 2018", catalog).doc_ids == ["a17", "a19"]
    assert docmeta.scope("how do I reset my password", catalog).doc_ids is None
    assert docmeta.resolve_where(catalog, ["year=2019", "company=zenith"]) == ["z19"]
    q = docmeta.parse_query("Acme FY2019 10-K", docmeta.company_keys("Acme Inc."))
    assert docmeta.match(q, catalog["a19"]) == 1.0
    assert docmeta.match(q, catalog["z19"]) < 0 < docmeta.match(q, catalog["a17"]) + 1


def _statement_pdf(path: Path) -> Path:
    """A borderless statement: labels left, right-aligned numbers under year headers."""
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    size = 9

    def right(x: float, y: float, text: str) -> None:
        page.insert_text((x - pymupdf.get_text_length(text, fontsize=size), y), text,
                         fontsize=size)

    page.insert_text((220, 60), "CONSOLIDATED BALANCE SHEETS", fontsize=10)
    page.insert_text((250, 74), "(in millions)", fontsize=size)
    right(520, 100, "December 31,")
    right(450, 112, "2018")
    right(530, 112, "2019")
    rows = [("Current liabilities:", None, None), ("Accounts payable", "$ 1,234", "$ 2,345"),
            ("Accrued expenses", "400", "512"), ("Total current liabilities", "1,634", "2,857"),
            ("Long-term debt", "900", "850")]
    y = 126
    for label, a, b in rows:
        page.insert_text((40, y), label, fontsize=size)
        if a:
            right(450, y, a)
            right(530, y, b)
        y += 14
    doc.save(path)
    return path


def test_table_rows_keep_their_label_and_column_headers(tmp_path: Path) -> None:
    doc = pymupdf.open(_statement_pdf(tmp_path / "bs.pdf"))
    tables = find_tables(lines_from_words(doc[0].get_text("words")))
    assert len(tables) == 1
    text = table_chunks(tables, 900)[0][0]
    assert text.startswith("CONSOLIDATED BALANCE SHEETS (in millions)")
    assert "Columns: December 31, 2018 | December 31, 2019" in text
    assert "Accounts payable (Current liabilities): 2018 = $1,234; 2019 = $2,345" in text
    assert "Total current liabilities: 2018 = 1,634; 2019 = 2,857" in text
    assert "Long-term debt: 2018 = 900; 2019 = 850" in text  # the section closed at its total


def test_a_signature_block_is_no_table_though_it_lines_up_like_one() -> None:
    """A filing's signature page ('/s/ NAME' beside 'Date:' and 'By:', under the company's
    name) is laid out in columns; as a table its heading made it a hit for any question
    naming the company."""
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.insert_text((40, 90), "thereunto duly authorized.", fontsize=9)
    page.insert_text((330, 110), "ACME WIDGETS, INC.", fontsize=9)
    page.insert_text((330, 122), "(Registrant)", fontsize=9)
    for y, (date, name, role) in zip(range(150, 250, 36), [
        ("Date: September 1, 2023", "/s/ JANE ROE", "Chief Executive Officer"),
        ("Date: September 1, 2023", "/s/ JOHN DOE", "Chief Financial Officer"),
        ("Date: September 1, 2023", "/s/ MARY MAJOR", "Chief Accounting Officer"),
    ], strict=True):
        page.insert_text((40, y), date, fontsize=9)
        page.insert_text((330, y), "By:", fontsize=9)
        page.insert_text((360, y), name, fontsize=9)
        page.insert_text((360, y + 12), role, fontsize=9)
    assert find_tables(lines_from_words(page.get_text("words"))) == []
    figures = doc.new_page(width=612, height=792)  # the same layout with figures is a table
    for y, (label, value) in zip(range(150, 250, 36), [
        ("Stores at start of quarter", "908"), ("Stores opened", "12"), ("Stores closed", "1"),
    ], strict=True):
        figures.insert_text((40, y), label, fontsize=9)
        figures.insert_text((360, y), value, fontsize=9)
    assert len(find_tables(lines_from_words(figures.get_text("words")))) == 1


def test_a_units_label_over_year_columns_is_a_header_not_a_row(tmp_path: Path) -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    lines = [("(dollars in millions)", "2022", "2021"), ("Subscription", "$ 16,388", "$ 14,573"),
             ("Product", "532", "555"), ("Services and other", "686", "657")]
    for y, (label, a, b) in zip(range(100, 200, 14), lines, strict=False):
        page.insert_text((40, y), label, fontsize=9)
        for x, value in ((450, a), (530, b)):
            page.insert_text((x - pymupdf.get_text_length(value, fontsize=9), y), value,
                             fontsize=9)
    (table,) = find_tables(lines_from_words(page.get_text("words")))
    assert table.headers == ["2022", "2021"]
    assert table.row_texts()[0] == "Subscription: 2022 = $16,388; 2021 = $14,573"


def test_stacked_header_lines_over_the_columns_make_one_header_each() -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)

    def right(x: float, y: float, text: str) -> None:
        page.insert_text((x - pymupdf.get_text_length(text, fontsize=9), y), text, fontsize=9)

    right(470, 90, "Fiscal 2024")
    for x, top in ((380, "Stores at Start"), (470, "Stores at End")):
        right(x, 102, top)
        right(x, 114, "of Quarter")
    rows = [("Domestic", "908", "907"), ("Outlet", "20", "20"), ("Total", "966", "969")]
    for y, (label, a, b) in zip((130, 144, 158), rows, strict=True):
        page.insert_text((40, y), label, fontsize=9)
        right(380, y, a)
        right(470, y, b)
    (table,) = find_tables(lines_from_words(page.get_text("words")))
    assert table.row_texts()[-1] == (
        "Total: Start of Quarter = 966; End of Quarter = 969"  # common words said once, above
    ), table.headers
    assert all(h.startswith("Fiscal 2024 Stores at") for h in table.headers)


def test_without_amounts_keeps_words_years_and_short_numbers() -> None:
    text = "Accounts payable: December 31, 2017 = $34,616; 2016 = (25,309)\nMargin: 2019 = 12.5 %"
    assert without_amounts(text) == "Accounts payable: December 31, 2017; 2016\nMargin: 2019"
    kept = "Error 404 on iPhone 15 in Q3 2019"
    assert without_amounts(kept) == kept


def test_a_statement_page_is_embedded_without_its_figures_and_once(tmp_path: Path) -> None:
    path = _statement_pdf(tmp_path / "bs.pdf")
    doc = pymupdf.open(path)
    doc[0].insert_text((40, 400), "Liquidity improved because suppliers extended terms.",
                       fontsize=9)
    doc.saveIncr()
    units = extract_pdf(path, None, 10, 900, 72).units  # type: ignore[arg-type]
    chunks = [u for u in units if u.modality == "text" and not u.payload.get("from")]
    (table,) = [u for u in units if u.payload.get("from") == "pdf-table"]
    (page,) = [u for u in units if u.modality == "page"]
    prose = " ".join(u.text for u in chunks)
    assert "suppliers extended terms" in prose and "Accrued expenses" in prose
    assert "Accrued expenses (Current liabilities): 2018 = 400; 2019 = 512" in table.text
    assert table.dense_text is not None and "2,857" not in table.dense_text
    assert "Total current liabilities: 2018; 2019" in table.dense_text
    # the page's text vector is pooled from its chunks, not embedded a second time
    assert set(page.text_vector_from) == {u.key for u in [*chunks, table]}
    assert "Accrued expenses" in page.text  # the page still shows and matches its whole text


def test_word_repair() -> None:
    vocab = vocabulary(["management reviews the cloud-native platform"])
    text = "the manage-\nment team\nuses cloud-\nnative tools; \ufb01nancial state\u00adments\u00a0"
    fixed = repair(text, vocab)
    assert "management team" in fixed
    assert "cloud-native" in fixed  # a real compound keeps its hyphen
    assert "financial statements" in fixed
    assert repair("O P E R A T I N G  results") == "OPERATING  results"


def _hit(i: str, modality: str, page: int | None, score: float, **kw) -> Hit:
    return Hit(id=i, score=score, modality=modality, doc_id=kw.pop("doc", "d1"),
               source="/x/r.pdf", page=page, **kw)


def test_collapse_keeps_one_hit_per_piece_of_evidence() -> None:
    hits = [
        _hit("page3", "page", 3, 0.9, bbox=[0, 0, 612, 792], blob="b-page3"),
        _hit("text3", "text", 3, 0.8, bbox=[40, 100, 500, 200], text="Accounts payable rose"),
        _hit("text3b", "text", 3, 0.5, bbox=[40, 400, 500, 500], text="Other matters"),
        _hit("fig5", "image", 5, 0.7, bbox=[50, 50, 300, 300], blob="b-fig"),
        _hit("fig5dup", "image", 5, 0.6, bbox=[51, 50, 300, 301], blob="b-fig2"),
        _hit("fig9", "image", 9, 0.4, bbox=[50, 50, 300, 300], blob="b-fig"),  # same crop
        _hit("other", "text", 3, 0.3, doc="d2", bbox=[40, 100, 500, 200], text="x"),
    ]
    out = collapse(hits)
    assert [h.id for h in out] == ["text3", "fig5", "text3b", "other"]
    top = out[0]
    assert top.score == 0.9 and top.extra["modalities"] == ["page", "text"]  # best score wins
    assert out[1].extra["merged"] == ["fig5dup", "fig9"]
    for i, a in enumerate(out):
        assert not any(same_evidence(a, b) for b in out[i + 1 :])


def test_renumber_gives_contiguous_numbers_in_order_of_first_use() -> None:
    hits = [_hit(f"h{i}", "text", i, 1.0, text=f"Fact {i}. Revenue was {i}00. Other.")
            for i in range(1, 8)]
    answer, cites = renumber("A [3]. B [7] and [3, 1]. C [12]. D [2-3].", hits, "revenue")
    assert answer == "A [1]. B [2] and [1, 3]. C. D [1, 4]."
    assert [(c.n, c.hit_id) for c in cites] == [(1, "h3"), (2, "h7"), (3, "h1"), (4, "h2")]
    assert cites[0].snippet == "Fact 3. Revenue was 300. Other."


def test_streamed_markers_are_renumbered_across_pieces() -> None:
    """A marker split over streamed pieces ("[", "3", "]") is held back until complete; the
    stream shows the numbers ``renumber`` gives the whole answer."""
    answer = "A [3]. B [7] and [3, 1]. C [12]. D [2-3]. See [link](x) and [a]."
    pieces = ["A [", "3", "]. B [7", "] and [3,", " 1]. C [1", "2]. D [2-3]. See [li",
              "nk](x) and [", "a]."]
    numbering = Renumberer(limit=7)
    streamed = "".join(numbering.feed(p) for p in pieces) + numbering.flush()
    assert streamed == "A [1]. B [2] and [1, 3]. C. D [1, 4]. See [link](x) and [a]."
    hits = [_hit(f"h{i}", "text", i, 1.0, text=f"Fact {i}.") for i in range(1, 8)]
    final, _ = renumber(answer, hits)
    assert final == streamed.replace("C .", "C.")  # the final answer also tidies the gap
    unlimited = Renumberer()
    assert unlimited.feed("x [12] y [2]") + unlimited.flush() == "x [1] y [2]"


def test_snippet_is_the_matching_sentence_or_row_with_neighbours() -> None:
    text = ("The company sells pumps. " * 12 + "Operating income rose to $4 million in 2019. "
            "This was driven by services. " + "Unrelated closing remarks follow here. " * 10)
    snippet = best_snippet(text, "What was operating income in 2019?")
    assert "Operating income rose to $4 million in 2019." in snippet
    assert "driven by services" in snippet and len(snippet) <= 320
    rows = "BALANCE SHEET\nCash: 2018 = 5; 2019 = 6\nAccounts payable: 2018 = 7; 2019 = 8\nDebt: 1"
    assert "Accounts payable: 2018 = 7; 2019 = 8" in best_snippet(rows, "accounts payable")
    table = ("Columns: Fiscal 2024 Stores Opened | Fiscal 2024 Stores Closed\n"
             "Domestic: 2024 Stores Opened = 5; 2024 Stores Closed = (2)")
    assert best_snippet(table, "How many stores opened in fiscal 2024?", 60) == (
        "Domestic: 2024 Stores Opened = 5; 2024 Stores Closed = (2)")


def test_followups_resolve_against_the_previous_turn() -> None:
    prev = "What is Acme's revenue growth from FY2016 to FY2017?"
    assert swap_period(prev, "the same for 2019") == (
        "What is Acme's revenue growth from FY2018 to FY2019?"
    )
    assert swap_period(prev, "and what about the CEO's salary?") is None
    cites = [{"doc_id": "d1", "page": 4, "modality": "text"},
             {"doc_id": "d2", "page": 7, "modality": "image"}]
    assert referenced_citation("what does that chart show?", cites)["doc_id"] == "d2"
    assert page_target("and on the next page?", cites) == ("d1", 5)
    res = resolve("explain that figure", prev, cites)
    assert res.doc_ids == ["d2"] and res.page == 7
    asked = "What was Acme's operating income in fiscal 2022?"
    assert resolve("And how much was it the year before?", asked).query == (
        "What was Acme's operating income in fiscal 2021?")
    assert resolve("what about the following year?", "Acme revenue FY22").query == (
        "Acme revenue FY23")
    assert resolve("and the year before?", "What is Acme's revenue?").query == (
        "and the year before?")  # no year to move


def test_sidecars_and_globs_are_selected(tmp_path: Path) -> None:
    (tmp_path / "report.pdf").write_bytes(b"%PDF-1.4")
    (tmp_path / "report.md").write_text("# same document")
    (tmp_path / "notes.md").write_text("# other")
    (tmp_path / "draft.pdf").write_bytes(b"%PDF-1.4")
    sel = select([tmp_path])
    assert sorted(p.name for p in sel.files) == ["draft.pdf", "notes.md", "report.pdf"]
    assert [(p.name, "sidecar of report.pdf" in why) for p, why in sel.skipped] == [
        ("report.md", True)
    ]
    sel = select([tmp_path], include=["*.md"], exclude=["notes*"])
    assert [p.name for p in sel.files] == ["report.md"]
    assert sel.skipped and all(p.name != "report.md" for p, _ in sel.skipped)
    assert [p.name for p in select([tmp_path / "report.md"]).files] == ["report.md"]  # named


def test_collapse_shows_the_table_row_inside_a_matching_text_chunk() -> None:
    chunk = _hit("chunk", "text", 3, 0.9, bbox=[40, 60, 540, 300], text="Accounts payable $ 1,377")
    row = _hit("row", "text", 3, 0.7, bbox=[40, 130, 530, 150],
               text="Accounts payable: 2019 = $1,377")
    (kept,) = collapse([chunk, row])
    assert (kept.id, kept.score, kept.extra["merged"]) == ("row", 0.9, ["chunk"])
    elsewhere = _hit("other", "text", 3, 0.5, bbox=[40, 400, 530, 420], text="Leases")
    assert len(collapse([chunk, row, elsewhere])) == 2


def test_a_wrapped_column_header_does_not_spread_to_its_neighbours() -> None:
    """Best Buy's store table: "Total Stores at" wraps over "Beginning of Quarter" and "End of
    Quarter" only; "Stores Opened" has no such line. "Fiscal 2024", centred over all four
    columns, still heads each of them."""
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)

    def right(x: float, y: float, text: str) -> None:
        page.insert_text((x - pymupdf.get_text_length(text, fontsize=9), y), text, fontsize=9)

    page.insert_text((300, 78), "Fiscal 2024", fontsize=9)
    for x, (top, bottom) in ((200, ("Total Stores at", "Beginning of Quarter")),
                             (300, ("", "Stores Opened")), (380, ("", "Stores Closed")),
                             (460, ("Total Stores at", "End of Quarter"))):
        if top:
            page.insert_text((x, 90), top, fontsize=9)
        page.insert_text((x, 102), bottom, fontsize=9)
    rows = [("Best Buy", "908", "-", "(1)", "907"), ("Pacific Sales", "20", "-", "-", "20"),
            ("Total", "966", "5", "(2)", "969")]
    for y, (label, *values) in zip((120, 134, 148), rows, strict=True):
        page.insert_text((40, y), label, fontsize=9)
        for x, value in zip((280, 360, 440, 540), values, strict=True):
            right(x, y, value)
    (table,) = find_tables(lines_from_words(page.get_text("words")))
    assert table.headers == [
        "Fiscal 2024 Total Stores at Beginning of Quarter", "Fiscal 2024 Stores Opened",
        "Fiscal 2024 Stores Closed", "Fiscal 2024 Total Stores at End of Quarter"]


def test_a_sentence_introducing_a_table_is_its_title() -> None:
    """ "Revenue mix ... by revenue category were as follows:" right above a table names what
    its rows are; a longer line that is not a lead-in is not taken."""
    from vistarag.agent.ingest.tables import _title

    lead = ("Domestic segment revenue mix percentages and comparable sales percentage changes "
            "by revenue category were as follows:")
    assert _title([_line(lead)], 0) == lead
    wrapped = [_line(lead[:90]), _line(lead[90:])]  # the sentence wraps onto a second line
    assert _title(wrapped, 1) == f"{lead[:90]} {lead[90:]}"
    prose = ("We continuously monitor store performance as part of a market-driven, omnichannel "
             "strategy, and we evaluate options as leases expire.")
    assert _title([_line(prose)], 0) == ""


def _line(text: str) -> object:
    from vistarag.agent.ingest.tables import Cell, Line

    return Line(0.0, 10.0, [Cell(text, 40.0, 540.0)])



def test_metric_and_statement_names_come_out_of_a_question() -> None:
    from vistarag.agent.metric_terms import without_metric_names

    q = "Was Amazon's FY2017 DPO above its Free Cash Flow? Use the Balance Sheet."
    assert without_metric_names(q).split() == ["Was", "Amazon's", "FY2017", "above", "its",
                                               "?", "Use", "the", "."]
