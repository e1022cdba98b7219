"""What analysts ask by, in the words filings print: a metric named in a question ("operating
margin", "DPO", "free cash flow conversion") maps to the statement line items it is computed
from ("operating income", "total net sales", "accounts payable"). A statement page shares few
words with such a question; searching for its line items as well finds it.

The table is standard financial-analysis vocabulary (US GAAP and IFRS names), not tuned to any
company: add a metric here when users ask by one it lacks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

REVENUE = "total revenue net sales"
OPERATING = "operating income income from operations"
NET_INCOME = "net income"
OPERATING_CASH = "net cash provided by operating activities"
CAPEX = "purchases of property and equipment capital expenditures"


@dataclass(frozen=True)
class Metric:
    """A metric as questions name it, and the line items it is computed from."""

    pattern: re.Pattern[str]
    line_items: str


def _words(alternatives: str) -> re.Pattern[str]:
    """Any of ``alternatives`` as whole words, in any case."""
    return re.compile(rf"\b(?:{alternatives})\b", re.IGNORECASE)


def _metric(names: str, line_items: str) -> Metric:
    return Metric(_words(names), line_items)


METRICS: tuple[Metric, ...] = (
    _metric(r"operating (?:profit )?margins?|operating margin profile|ebit margin",
            f"{OPERATING} {REVENUE}"),
    _metric(r"gross (?:profit )?margins?|gross profit", f"gross profit cost of sales {REVENUE}"),
    _metric(r"net (?:profit )?margins?|profit margins?", f"{NET_INCOME} {REVENUE}"),
    _metric(r"ebitda", f"{OPERATING} depreciation and amortization"),
    _metric(r"free cash ?flows?|fcf|cash ?flow conversion|cash conversion",
            f"{OPERATING_CASH} {CAPEX} {NET_INCOME}"),
    _metric(r"capex|capital expenditures?|capital spending", CAPEX),
    _metric(r"days payables? outstanding|dpo|payables? turnover",
            "accounts payable cost of sales inventories"),
    _metric(r"days sales outstanding|dso|receivables? turnover",
            f"accounts receivable {REVENUE}"),
    _metric(r"days inventory outstanding|dio|inventory turnover|days of inventory",
            "inventories cost of sales"),
    _metric(r"working capital|current ratio|quick ratio|liquidity ratio",
            "total current assets total current liabilities cash and cash equivalents"),
    _metric(r"debt[- ]to[- ](?:equity|capital)|leverage ratio|net debt",
            "long-term debt total stockholders equity cash and cash equivalents"),
    _metric(r"return on (?:average )?assets|roa", f"{NET_INCOME} total assets"),
    _metric(r"return on (?:average )?equity|roe", f"{NET_INCOME} total stockholders equity"),
    _metric(r"asset turnover", f"{REVENUE} total assets"),
    _metric(r"effective tax rate", "provision for income taxes income before income taxes"),
    _metric(r"interest coverage", f"{OPERATING} interest expense"),
    _metric(r"dividend payout(?: ratio)?", f"dividends {NET_INCOME}"),
    _metric(r"top[- ]line|(?:revenue|sales) growth|(?:growth|change|increase|decrease|decline)"
            r" in (?:total |net )?(?:revenues?|sales)", REVENUE),
    _metric(r"bottom[- ]line", NET_INCOME),
)


@dataclass(frozen=True)
class Statement:
    """A financial statement as questions name it, the titles filings print over it, and the
    words to search for it by."""

    name: str
    pattern: re.Pattern[str]  # how a question names it
    titles: re.Pattern[str]  # how a filing titles it
    line_items: str


def _statement(name: str, asked: str, titles: str, line_items: str) -> Statement:
    return Statement(name, _words(asked), _words(titles), line_items)


STATEMENTS: tuple[Statement, ...] = (
    _statement("income statement",
               r"income statements?|statements? of (?:income|operations|earnings)|p&l"
               r"|profit and loss",
               r"statements? of (?:income|operations|earnings)|income statements?"
               r"|profit and loss (?:account|statement)",
               "statements of operations statements of income"),
    _statement("balance sheet", r"balance sheets?|statements? of financial position",
               r"balance sheets?|statements? of financial (?:position|condition)",
               "balance sheets total assets total liabilities"),
    _statement("cash flow statement",
               r"cash ?flow statements?|statements? of cash ?flows?",
               r"statements? of cash ?flows?|cash ?flow statements?",
               "statements of cash flows"),
)
"""A statement named in a question, in the titles filings give it."""


def named_statements(question: str) -> list[str]:
    """The statements a question names ("income statement", ...)."""
    return [st.name for st in STATEMENTS if st.pattern.search(question)]


def titled_as(title: str, statements: list[str]) -> bool:
    """Whether a table's title is that of one of ``statements`` ("CONSOLIDATED STATEMENTS OF
    OPERATIONS" for "income statement"). A sentence introducing a table ("Stock-based costs
    included in our Consolidated Statements of Income were as follows:") only mentions one, and
    an index that lists several is none of them."""
    if title.rstrip().endswith(":"):
        return False
    titled = [st.name for st in STATEMENTS if st.titles.search(title)]
    return len(titled) == 1 and titled[0] in statements


def line_items(question: str) -> list[str]:
    """The line items of each metric or statement the question names, one text for each."""
    items = [m.line_items for m in (*METRICS, *STATEMENTS) if m.pattern.search(question)]
    return list(dict.fromkeys(items))


def without_metric_names(text: str) -> str:
    """``text`` less the metric and statement names in it: "Free cashflow conversion" is a term
    of art, its capital F no name to look for."""
    for named in (*METRICS, *STATEMENTS):
        text = named.pattern.sub(" ", text)
    return text
