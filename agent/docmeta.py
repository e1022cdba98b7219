"""Document metadata from a small rule set: title, company, form, fiscal year and period, dates.

``describe`` reads a document's first pages and its file name at ingest (no model, no network);
the result is stored on every point under ``payload["doc"]``. At query time ``parse_query``
finds what a question names (years, quarters, forms, companies of the knowledge base) and
``scope`` turns that into the documents to search (a filter when it is unambiguous) plus a
per-document preference the reranker adds (``match``).

Rules are written for filings in general (SEC 10-K / 10-Q / 8-K / 20-F / 40-F, earnings
releases, annual reports, slides), any company and year; nothing is specific to one file.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

MONTHS = {
    m: i
    for i, names in enumerate(
        [("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"),
         ("may",), ("jun", "june"), ("jul", "july"), ("aug", "august"),
         ("sep", "sept", "september"), ("oct", "october"), ("nov", "november"),
         ("dec", "december")],
        start=1,
    )
    for m in names
}
_MONTH = r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|" \
         r"sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
_DATE = re.compile(_MONTH + r"\.?\s+(\d{1,2}),?\s+((?:19|20)\d\d)", re.I)
_ISO_DATE = re.compile(r"\b((?:19|20)\d\d)-(\d\d)-(\d\d)\b")

FORMS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("10-K", re.compile(r"\bform\s+10-?K\b|\bannual report pursuant to section 13", re.I)),
    ("10-Q", re.compile(r"\bform\s+10-?Q\b|\bquarterly report pursuant to section 13", re.I)),
    ("8-K", re.compile(r"\bform\s+8-?K\b|\bcurrent report pursuant to section 13", re.I)),
    ("20-F", re.compile(r"\bform\s+20-?F\b", re.I)),
    ("40-F", re.compile(r"\bform\s+40-?F\b", re.I)),
    ("S-1", re.compile(r"\bform\s+S-1\b", re.I)),
    ("DEF 14A", re.compile(r"\bschedule\s+14A\b|\bproxy statement\b", re.I)),
    ("earnings release", re.compile(
        r"\b(?:reports?|announces?)\b[^.\n]{0,80}\b(?:results|earnings)\b"
        r"|\bearnings (?:release|press release)\b|\bpress release\b", re.I)),
    ("annual report", re.compile(r"\bannual report\b", re.I)),
    ("slides", re.compile(r"\b(?:investor|earnings) (?:presentation|day|call slides)\b", re.I)),
)
_FILE_FORMS = (
    ("10-K", re.compile(r"(?<![a-z0-9])10-?k(?:405)?(?![a-z])", re.I)),
    ("10-Q", re.compile(r"(?<![a-z0-9])10-?q(?![a-z])", re.I)),
    ("8-K", re.compile(r"(?<![a-z0-9])8-?k(?![a-z])", re.I)),
    ("20-F", re.compile(r"(?<![a-z0-9])20-?f(?![a-z])", re.I)),
    ("earnings release", re.compile(r"earnings|press[_ -]?release|results", re.I)),
    ("slides", re.compile(r"slides|presentation|deck", re.I)),
    ("annual report", re.compile(r"annual[_ -]?report", re.I)),
)
QUARTERLY_FORMS = {"10-Q"}
ANNUAL_FORMS = {"10-K", "20-F", "40-F", "annual report"}

_FY_ENDED = re.compile(r"fiscal\s+year\s+ended\s*:?\s*" + _DATE.pattern, re.I)
_Q_ENDED = re.compile(
    r"(?:quarterly\s+period|quarter|three\s+months)\s+ended\s*:?\s*" + _DATE.pattern, re.I
)
_FISCAL_YEAR_WORD = re.compile(r"\bfiscal(?:\s+year)?\s+((?:19|20)\d\d)\b", re.I)
_ORDINAL_Q = re.compile(
    r"\b(first|second|third|fourth)\s+(?:fiscal\s+)?quarter(?:\s+of)?\s+(?:fiscal\s+(?:year\s+)?)?"
    r"((?:19|20)\d\d)\b",
    re.I,
)
_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "1st": 1, "2nd": 2, "3rd": 3,
             "4th": 4}
_REGISTRANT = re.compile(r"\(\s*exact name of (?:the\s+)?registrant", re.I)
_COMPANY_LINE = re.compile(
    r"^[A-Z0-9][A-Za-z0-9.,&'’\- ]{1,80}\b(?:inc|incorporated|corp|corporation|co|company|ltd|"
    r"limited|plc|llc|l\.p|lp|n\.v|s\.a|ag|se|group|holdings)\.?,?$",
    re.I,
)
_COMPANY_SUFFIX = re.compile(
    r"[\s,]+(?:inc|incorporated|corp|corporation|co|company|ltd|limited|plc|llc|l\.?p|n\.?v|"
    r"s\.?a|ag|se|group|holdings)\.?$",
    re.I,
)
_TICKER = re.compile(r"^(?:trading\s+symbol\(?s?\)?\s*:?\s*)?([A-Z]{1,5}(?:\.[A-Z])?)$")
_ACT_OF = re.compile(r"\bAct\s+of\s+(?:19|20)\d\d", re.I)  # "Securities Exchange Act of 1934"
_YEAR = re.compile(r"(?<!\d)((?:19|20)\d\d)(?!\d)")
_FILE_FY = re.compile(r"(?<![a-z0-9])(?:fy|fiscal)[_ -]?(\d{2}|\d{4})(?!\d)", re.I)
_FILE_Q = re.compile(r"(?<![a-z])q([1-4])(?![0-9])|(?<![0-9])([1-4])q(?![a-z])", re.I)


@dataclass
class DocMeta:
    """What a user asks documents by. Every field may be empty."""

    title: str = ""
    company: str = ""
    ticker: str = ""
    form: str = ""
    fiscal_year: int | None = None
    fiscal_period: str = ""  # "FY", "Q1".."Q4" or ""
    period_end: str = ""  # ISO date the report covers up to
    dates: list[str] = field(default_factory=list)  # other ISO dates found on the first pages
    years: list[int] = field(default_factory=list)  # years the document's text mentions most

    def to_payload(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in ("", None, [])}


def _iso(month: str, day: str, year: str) -> str | None:
    m = MONTHS.get(month.lower().rstrip(".")[:3])
    try:
        return date(int(year), m, int(day)).isoformat() if m else None
    except ValueError:
        return None


def _clean_company(name: str) -> str:
    name = " ".join(name.replace("\u2019", "'").split()).strip(" ,")
    if name.isupper():  # "AMAZON.COM, INC." -> "Amazon.com, Inc."
        name = " ".join(w[:1] + w[1:].lower() if len(w) > 1 else w for w in name.split())
    return name


_COMMON_FIRST_WORDS = frozenset({
    "general", "american", "first", "united", "national", "international", "global", "capital",
    "state", "public", "southern", "northern", "western", "eastern", "pacific", "atlantic",
    "royal", "standard", "central", "digital",
})
# Words that are no company's name on their own: a page header "The Company", "Our Company",
# "Home" is boilerplate, and a question with "the" in it names nobody.
GENERIC_WORDS = frozenset({
    "a", "an", "the", "our", "your", "my", "their", "its", "this", "that", "these", "those", "we",
    "us", "you", "it", "i", "of", "and", "or", "for", "to", "in", "on", "at", "by", "with",
    "from", "as", "is", "are", "be", "was", "home", "welcome", "main", "menu", "page", "site",
    "about", "contact", "company", "companies", "group", "holdings", "inc", "corp", "co", "ltd",
    "business", "firm", "team", "services", "service", "products", "product", "shop", "store",
    "new", "news", "blog", "login", "sign", "signin", "account", "dashboard", "settings",
    "report", "annual", "quarterly", "overview", "error", "warning", "untitled", "document",
    "slide", "presentation", "title", "screen",
})
MIN_KEY_CHARS = 3  # shorter keys ("ab") are no name; tickers of two letters come from ``ticker``


def _generic(words: Sequence[str]) -> bool:
    return all(w in GENERIC_WORDS or len(w) < 2 for w in words)


def company_keys(company: str, ticker: str = "") -> list[str]:
    """Lower-case names a question may use for the company: "best buy", "amazon", "bby".

    Never a stop word or a generic noun ("The Company" has no key at all)."""
    base = company.replace("\u2019", "'")
    keys: list[str] = []
    stripped = base
    for _ in range(3):
        stripped = _COMPANY_SUFFIX.sub("", stripped).strip(" ,.")
    stripped = re.sub(r"\.(?:com|net|org)\b", "", stripped, flags=re.I)
    stripped = re.sub(r"^the\s+", "", stripped, flags=re.I)
    words = re.findall(r"[a-z0-9]+(?:&[a-z0-9]+)?", stripped.lower())
    norm = " ".join(words)
    if norm and len(norm) >= MIN_KEY_CHARS and not _generic(words):
        keys.append(norm)
    if (len(words) > 1 and len(words[0]) >= 5 and words[0] not in _COMMON_FIRST_WORDS
            and words[0] not in GENERIC_WORDS):
        keys.append(words[0])  # "Meta Platforms" is asked about as "Meta"
    t = ticker.lower()
    if len(t) >= 2 and t not in GENERIC_WORDS and t not in keys:
        keys.append(t)
    return keys


def plausible_company(name: str) -> bool:
    """Whether ``name`` can be a company's name: "The Company", "Our Company", "Home Inc." are
    headers, not names."""
    return bool(company_keys(name)) and not company_keys(name)[0].isdigit()


def _company(lines: list[str], cover_only: bool = False) -> str:
    """The registrant line above "(Exact name of registrant ...)", else (unless
    ``cover_only``) a short line ending in Inc., Corp., Company...; never a generic header
    ("The Company")."""
    for i, line in enumerate(lines):
        if _REGISTRANT.search(line):
            for prev in reversed(lines[max(0, i - 3) : i]):
                if len(prev.strip(" _-")) > 1 and not prev.lower().startswith("commission"):
                    name = _clean_company(prev)
                    return name if plausible_company(name) else ""
    if cover_only:
        return ""
    for line in lines[:80]:
        if _COMPANY_LINE.match(line.strip()) and len(line.split()) <= 8:
            name = _clean_company(line)
            if plausible_company(name):
                return name
    return ""


def _ticker(lines: list[str]) -> str:
    for i, line in enumerate(lines[:150]):
        if re.search(r"trading\s+symbol", line, re.I):
            for cand in lines[i : i + 8]:
                m = _TICKER.match(cand.strip())
                if m and m.group(1) not in {"N/A", "NONE", "I", "II"} and len(m.group(1)) >= 2:
                    return m.group(1)
    m = re.search(r"\((?:NYSE|NASDAQ|Nasdaq|NYSE American|TSX)\s*:\s*([A-Z]{1,5})\)",
                  "\n".join(lines[:120]))
    return m.group(1) if m else ""


def _form(text: str, filename: str, pdf_meta: Mapping[str, Any], plain_only: bool = False) -> str:
    subject = f"{pdf_meta.get('subject', '')} {pdf_meta.get('keywords', '')}"
    for name, pattern in _FILE_FORMS[:4]:
        if pattern.search(subject):
            return name
    head = text[:6000]
    for name, pattern in FORMS[:6] if plain_only else FORMS:  # SEC forms only: said plainly
        if pattern.search(head):
            return name
    for name, pattern in _FILE_FORMS:
        if pattern.search(filename):
            return name
    return ""


def _two_digit(y: str) -> int:
    n = int(y)
    return n if n >= 100 else 2000 + n if n < 70 else 1900 + n


def describe(
    filename: str, first_text: str, pdf_meta: Mapping[str, Any] | None = None,
    body_text: str = "", plain_only: bool = False,
) -> DocMeta:
    """Metadata from a document's first pages (``first_text``), its file name, the PDF info
    dictionary and optionally more of its text (``body_text``, for "fiscal 2024" counts).

    ``plain_only`` (screenshots, photos, videos): only what the content says plainly, a
    filing's cover (registrant, form, period ended) or a dated title ("fiscal 2024"); no
    company from a header line, no form or year from the file name or from counting years."""
    pdf_meta = pdf_meta or {}
    stem = re.sub(r"\.[A-Za-z0-9]{1,5}$", "", filename.replace("\\", "/").rsplit("/", 1)[-1])
    lines = [ln.strip() for ln in first_text.splitlines() if ln.strip()]
    meta = DocMeta()
    meta.form = _form(first_text, "" if plain_only else stem, pdf_meta, plain_only)
    meta.company = _company(lines, cover_only=plain_only)
    if not meta.company and pdf_meta.get("author") and "edgar" not in pdf_meta["author"].lower():
        author = str(pdf_meta["author"])
        if _COMPANY_SUFFIX.search(author):
            meta.company = _clean_company(author)
    meta.ticker = _ticker(lines)
    head = " ".join(lines)[:8000]
    fy_end = _FY_ENDED.search(head)
    q_end = _Q_ENDED.search(head)
    if fy_end and (meta.form in ANNUAL_FORMS or not q_end):
        meta.period_end = _iso(*fy_end.groups()[:3]) or ""
        meta.fiscal_period = "FY"
    elif q_end:
        meta.period_end = _iso(*q_end.groups()[:3]) or ""
    # Fiscal year: "fiscal 2024" / "second quarter of fiscal 2024" beat the calendar year of the
    # period end (retailers' fiscal years end in January or February of the next year).
    text = f"{first_text}\n{body_text}"
    ordinal = Counter(
        (_ORDINALS[m.group(1).lower()], int(m.group(2))) for m in _ORDINAL_Q.finditer(text)
    )
    fiscal_words = Counter(int(m.group(1)) for m in _FISCAL_YEAR_WORD.finditer(text))
    end_year = int(meta.period_end[:4]) if meta.period_end else None
    if meta.fiscal_period != "FY" and (q_end or meta.form in QUARTERLY_FORMS):
        if ordinal:
            (q, fy), _ = ordinal.most_common(1)[0]
            meta.fiscal_period, meta.fiscal_year = f"Q{q}", fy
        elif end_year:
            meta.fiscal_year = end_year
    elif end_year:
        meta.fiscal_year = end_year
        # A year ending in January-March is often named after the year it started in.
        if int(meta.period_end[5:7]) <= 3 and end_year not in fiscal_words and (
            end_year - 1 in fiscal_words
        ):
            meta.fiscal_year = end_year - 1
    # File name: "ACME_2019_10K", "acme-fy22-q3", "2024Q2".
    file_years = [] if plain_only else [int(y) for y in _YEAR.findall(stem)] + [
        _two_digit(y) for y in _FILE_FY.findall(stem)
    ]
    if meta.fiscal_year is None and file_years:
        meta.fiscal_year = file_years[0]
    fq = None if plain_only else _FILE_Q.search(stem)
    if not meta.fiscal_period and fq:
        meta.fiscal_period = f"Q{fq.group(1) or fq.group(2)}"
    if not meta.fiscal_period and meta.form in ANNUAL_FORMS:
        meta.fiscal_period = "FY"
    if meta.fiscal_year is None:
        if fiscal_words:
            meta.fiscal_year = fiscal_words.most_common(1)[0][0]
        elif end_year:
            meta.fiscal_year = end_year
    dates = []
    for m in _DATE.finditer(head):
        iso = _iso(*m.groups()[:3])
        if iso and iso not in dates and iso != meta.period_end:
            dates.append(iso)
    meta.dates = dates[:5]
    counted = Counter(int(y) for y in _YEAR.findall(_ACT_OF.sub(" ", text)))
    meta.years = sorted(y for y, _ in counted.most_common(4))
    # the year a text mentions most is a report's year only in a report (a form or a company
    # on its cover); a paper about the typewriter's history is no "fiscal 1874" document
    if meta.fiscal_year is None and meta.years and not plain_only and (
            meta.form or meta.company):
        meta.fiscal_year = counted.most_common(1)[0][0]
    meta.title = _title(meta, stem, pdf_meta, lines)
    return meta


def _title(meta: DocMeta, stem: str, pdf_meta: Mapping[str, Any], lines: list[str]) -> str:
    if meta.company and (meta.form or meta.fiscal_year):
        period = ""
        if meta.fiscal_year:
            period = (
                f"FY{meta.fiscal_year}" if meta.fiscal_period in ("", "FY")
                else f"{meta.fiscal_period} FY{meta.fiscal_year}"
            )
        return " ".join(p for p in (meta.company, meta.form, period) if p)
    title = str(pdf_meta.get("title") or "").strip()
    if title and not re.fullmatch(r"[\d\-]+", title) and len(title) > 3:
        return title
    for line in lines[:5]:
        if 4 <= len(line) <= 120 and re.search(r"[A-Za-z]{3}", line):
            return line
    return stem


def label(meta: Mapping[str, Any] | None) -> str:
    """Short human label: "Amazon.com, Inc. 10-K FY2017"; '' without metadata."""
    if not meta:
        return ""
    return str(meta.get("title") or "")


# ---------------------------------------------------------------------------------- queries

_Q_FY = re.compile(r"(?<![a-z0-9])(?:fy|fiscal(?:\s+year)?)\s*'?(\d{4}|\d{2})(?!\d)", re.I)
_Q_QUARTER = re.compile(
    r"(?<![a-z0-9])q([1-4])(?![0-9])|\b(first|second|third|fourth|1st|2nd|3rd|4th)\s+quarter\b",
    re.I,
)
_Q_FORMS = (
    ("10-K", re.compile(r"(?<![a-z0-9])10-?k(?![a-z])|\bannual (?:report|filing)\b", re.I)),
    ("10-Q", re.compile(r"(?<![a-z0-9])10-?q(?![a-z])|\bquarterly (?:report|filing)\b", re.I)),
    ("8-K", re.compile(r"(?<![a-z0-9])8-?k(?![a-z])", re.I)),
    ("earnings release", re.compile(r"\bearnings (?:release|press release)\b", re.I)),
)


@dataclass
class QueryScope:
    """What a question names that documents are described by."""

    years: set[int] = field(default_factory=set)
    quarters: set[str] = field(default_factory=set)
    forms: set[str] = field(default_factory=set)
    companies: set[str] = field(default_factory=set)  # company keys found in the question
    names: set[str] = field(default_factory=set)  # those of them written as a name ("Acme")

    def empty(self) -> bool:
        return not (self.years or self.quarters or self.forms or self.companies)


def parse_query(text: str, company_keys_known: Iterable[str] = ()) -> QueryScope:
    """Years, quarters, forms and (known) companies a question names."""
    scope = QueryScope()
    scope.years = {_two_digit(y) for y in _Q_FY.findall(text)}
    scope.years |= {int(y) for y in _YEAR.findall(text)}
    for m in _Q_QUARTER.finditer(text):
        scope.quarters.add(f"Q{m.group(1) or _ORDINALS[m.group(2).lower()]}")
    scope.forms = {name for name, pattern in _Q_FORMS if pattern.search(text)}
    plain = text.lower().replace("\u2019", "'").replace("'s ", " ")
    low = " " + " ".join(re.findall(r"[a-z0-9&]+", plain)) + " "
    for key in company_keys_known:
        if key and len(key) >= 2 and f" {key} " in low:
            scope.companies.add(key)
            if written_as_name(text, key):
                scope.names.add(key)
    return scope


def written_as_name(text: str, key: str) -> bool:
    """Whether ``key`` ("best buy") occurs in ``text`` written as a name: each word capitalised
    or in capitals ("Best Buy", "BBY"), not as the lower-case word a sentence uses."""
    words = [re.escape(w) for w in key.split()]
    pattern = re.compile(r"(?<![A-Za-z0-9])" + r"[\s\-]+".join(words) + r"(?![A-Za-z0-9])", re.I)
    for m in pattern.finditer(text.replace("\u2019", "'")):
        if all(w[:1].isupper() or w[:1].isdigit() for w in re.findall(r"[A-Za-z0-9]+", m.group())):
            return True
    return False


_QUARTER_WORDS = {1: "first", 2: "second", 3: "third", 4: "fourth"}


def period_words(question: str) -> str:
    """A question's periods in the words filings print them: "Q2 FY2024" -> "second quarter
    fiscal 2024" (a statement's column says "Second Quarter", not "Q2")."""
    words = [f"{_QUARTER_WORDS[int(m.group(1))]} quarter"
             for m in _Q_QUARTER.finditer(question) if m.group(1)]
    words += [f"fiscal {_two_digit(m.group(1))}" for m in _Q_FY.finditer(question)]
    return " ".join(dict.fromkeys(words))


def doc_keys(meta: Mapping[str, Any]) -> list[str]:
    return company_keys(str(meta.get("company") or ""), str(meta.get("ticker") or ""))


def match(scope: QueryScope, meta: Mapping[str, Any] | None) -> float:
    """How well a document fits what the question names: -1 (contradicts) .. 1 (fits all).

    A document of another company contradicts only a company written as a name ("Acme");
    a document without a company (a screenshot, a paper) is neither for nor against one."""
    if scope.empty() or not meta:
        return 0.0
    parts: list[float] = []
    if scope.companies:
        keys = set(doc_keys(meta))
        if keys & scope.companies:
            parts.append(1.0)
        elif keys and scope.names:
            return -1.0  # another company's document, whatever its year
    fy = meta.get("fiscal_year")
    if scope.years and fy:
        if fy in scope.years:
            parts.append(1.0)
        else:  # a later report still covers earlier years, but it is not the one asked about
            parts.append(-0.5 if any(fy - 2 <= y < fy for y in scope.years) else -1.0)
    if scope.quarters and meta.get("fiscal_period"):
        parts.append(1.0 if meta["fiscal_period"] in scope.quarters else -0.5)
    if scope.forms and meta.get("form"):
        parts.append(1.0 if meta["form"] in scope.forms else -0.5)
    return sum(parts) / len(parts) if parts else 0.0


@dataclass
class Scope:
    """The documents a question is limited to (None: all) and why; ``boosted``: documents the
    question seems to name that are preferred in ranking but not filtered to."""

    doc_ids: list[str] | None
    reason: str = ""
    query: QueryScope = field(default_factory=QueryScope)
    boosted: list[str] = field(default_factory=list)


MAX_NAME_SHARE = 0.25  # a company key found in more of the documents than this is no filter
MIN_NAME_CHARS = 4  # nor is a shorter one ("ibm" and "bby" still boost)


def distinctive(key: str, question: str, docs_with_key: int, n_docs: int) -> bool:
    """Whether a company key the question contains can filter: a real name (no stop word or
    generic noun, ``MIN_NAME_CHARS`` long), written as a name in the question, and found in a
    small share of the documents."""
    return (
        len(key) >= MIN_NAME_CHARS
        and not _generic(key.split())
        and docs_with_key <= max(2, MAX_NAME_SHARE * n_docs)
        and written_as_name(question, key)
    )


def scope(question: str, catalog: Mapping[str, Mapping[str, Any]]) -> Scope:
    """Limit the search to the documents a question names, when that is unambiguous and
    distinctive.

    ``catalog`` maps doc_id -> metadata. Only a company named distinctively (``distinctive``)
    limits the search, to that company's documents; a named year / quarter / form then narrows
    further only if some of them match it (so a year that only appears as a comparison column
    never empties the search). Anything else the question seems to name (a year alone, a
    lower-case or common company word) only boosts: ``boosted`` lists those documents and the
    reranker prefers them (``match``); nothing is hidden.
    """
    counts = Counter(k for meta in catalog.values() for k in set(doc_keys(meta)))
    q = parse_query(question, counts)
    if q.empty() or not catalog:
        return Scope(None, query=q)
    named = {k for k in q.companies if distinctive(k, question, counts[k], len(catalog))}
    if not named:
        boosted = sorted(d for d, m in catalog.items() if match(q, m) > 0)
        return Scope(None, "boost only", q, boosted)
    docs = {d: m for d, m in catalog.items() if set(doc_keys(m)) & named}
    reasons = ["company " + "/".join(sorted(named))]
    for name, wanted, get in (
        ("year", q.years, lambda m: m.get("fiscal_year")),
        ("period", q.quarters, lambda m: m.get("fiscal_period")),
        ("form", q.forms, lambda m: m.get("form")),
    ):
        if not wanted:
            continue
        narrowed = {d: m for d, m in docs.items() if get(m) in wanted}
        if narrowed:
            docs = narrowed
            reasons.append(f"{name} " + "/".join(str(w) for w in sorted(wanted)))
    if not docs or len(docs) == len(catalog):
        return Scope(None, query=q)
    return Scope(sorted(docs), "; ".join(reasons), q)


def resolve_where(
    catalog: Mapping[str, Mapping[str, Any]], where: Sequence[str] = (), doc: Sequence[str] = ()
) -> list[str]:
    """Doc ids matching explicit ``--where key=value`` clauses and ``--doc NAME`` patterns.

    ``--where year=2019 company=amazon form=10-K period=Q2``; ``--doc`` matches a doc_id, a
    file name, or a substring of the source path or title (case-insensitive).
    """
    aliases = {"year": "fiscal_year", "fy": "fiscal_year", "period": "fiscal_period",
               "quarter": "fiscal_period", "kind": "form"}
    out = []
    for doc_id, meta in catalog.items():
        ok = True
        for clause in where:
            key, _, value = clause.partition("=")
            key = aliases.get(key.strip().lower(), key.strip().lower())
            value = value.strip().lower()
            have = meta.get(key)
            if key == "company":
                ok &= any(value in k for k in doc_keys(meta)) or value in str(have).lower()
            elif key == "fiscal_year":
                ok &= str(have) == value.removeprefix("fy")
            else:
                ok &= str(have if have is not None else "").lower() == value
        if doc:
            hay = [doc_id.lower(), str(meta.get("source", "")).lower(),
                   str(meta.get("title", "")).lower()]
            ok &= any(any(p.lower() in h for h in hay) for p in doc)
        if ok:
            out.append(doc_id)
    return sorted(out)


# ------------------------------------------------------------------------- ingest and catalog

MEDIA_SUFFIXES = frozenset({
    ".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".mp4", ".mov", ".mkv",
    ".webm", ".avi", ".m4v",
})
FIRST_PAGES = 3  # pages read for the cover (company, form, period)
BODY_PAGES = 15  # pages read for "fiscal 2024" / "second quarter of fiscal 2024" mentions


def describe_pages(
    name: str, by_page: Mapping[int, Sequence[str]], pdf_meta: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The ``doc`` payload of a document from the texts of its first pages (page -> texts)."""
    pages = sorted(by_page)
    first = "\n".join(t for p in pages[:FIRST_PAGES] for t in by_page[p])
    body = "\n".join(t for p in pages[FIRST_PAGES:BODY_PAGES] for t in by_page[p])
    plain = Path(name).suffix.lower() in MEDIA_SUFFIXES  # a screenshot, a photo, a video
    meta = describe(name, first, dict(pdf_meta or {}), body, plain_only=plain)
    return {**meta.to_payload(), "file": name}


def head_texts(units: Iterable[Any], into: dict[int, list[str]]) -> None:
    """Collect the texts ``describe_pages`` reads (pages up to ``BODY_PAGES``) into ``into``."""
    for unit in units:
        page = unit.page or 1
        if unit.modality in ("text", "page") and unit.text and page <= BODY_PAGES:
            into.setdefault(page, []).append(unit.text)


_CATALOGS: dict[tuple[int, str, str | None], tuple[float, dict[str, dict[str, Any]]]] = {}
CATALOG_TTL_S = 30.0


def invalidate_catalog() -> None:
    _CATALOGS.clear()


def catalog(kb: Any, owner: str | None = None) -> dict[str, dict[str, Any]]:
    """doc_id -> metadata (with ``source``) of every described document in a knowledge base
    (only ``owner``'s documents when given).

    One point per document carries ``doc_head``; the result is cached for ``CATALOG_TTL_S``
    seconds and dropped whenever this process ingests.
    """
    import time

    from vistarag.agent.index.filters import field_filter

    key = (id(kb.backend), kb.collection, owner)
    cached = _CATALOGS.get(key)
    if cached and time.monotonic() - cached[0] < CATALOG_TTL_S:
        return cached[1]
    out: dict[str, dict[str, Any]] = {}
    if kb.exists():
        flt = field_filter(doc_head=True, **({"owner": owner} if owner is not None else {}))
        for point in kb.scroll(flt, fields=["doc_id", "doc", "source"]):
            p = point.payload or {}
            if p.get("doc_id") and isinstance(p.get("doc"), dict):
                out[p["doc_id"]] = {**p["doc"], "source": p.get("source", "")}
    _CATALOGS[key] = (time.monotonic(), out)
    return out
