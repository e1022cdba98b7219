"""Eval material for the reranker: documents plus queries with known relevant documents.

Two kinds of material:

* ``paraphrase``: paraphrased questions over long documents: the real PDFs in
  ``<data>/pdfs`` (chunked page-aware, ~900 chars) and generated multi-aspect company reports.
* ``exact``: exact names / IDs over near-duplicate generated OCR-like texts (error dialogs,
  product pages, staff directories, file listings) and variants of real screenshots' OCR text.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Doc:
    id: str
    text: str
    source: str = ""
    page: int | None = None


@dataclass
class Query:
    text: str
    relevant: set[str]
    group: str = ""
    key: str | None = None  # exact-material: relevant = every document containing this string


@dataclass
class Material:
    name: str
    docs: list[Doc] = field(default_factory=list)
    queries: list[Query] = field(default_factory=list)

    def extend(self, other: Material) -> None:
        self.docs += other.docs
        self.queries += other.queries

    def resolve_keys(self) -> None:
        """Relevant = every document containing the query's key string (whole words)."""
        texts = [(d.id, norm(d.text)) for d in self.docs]
        for q in self.queries:
            if q.key:
                pat = re.compile(r"(?<!\w)" + re.escape(norm(q.key)) + r"(?!\w)")
                q.relevant = {i for i, t in texts if pat.search(t)}


_WS = re.compile(r"\s+")


def norm(text: str) -> str:
    return _WS.sub(" ", text).strip().lower()


# ------------------------------------------------------------------------- real PDF material


def chunk_page(text: str, target: int = 900) -> list[str]:
    """Greedy line packing into ~target-char chunks (never across pages)."""
    chunks: list[str] = []
    buf: list[str] = []
    size = 0
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if size + len(line) > target and size >= target * 0.5:
            chunks.append(" ".join(buf))
            buf, size = [], 0
        buf.append(line)
        size += len(line) + 1
    if buf:
        chunks.append(" ".join(buf))
    return chunks


# (pdf, page, distinctive substring in the answer chunk, paraphrased question)
PDF_QUESTIONS: list[tuple[str, int, str, str]] = [
    ("multi_page.pdf", 1, "Patented in 1868 by Christopher Latham Sholes",
     "Who was granted the patent for the first practical typing machine?"),
    ("multi_page.pdf", 1, "Introduced in 1964, this machine combined",
     "Which early device paired an electric typewriter with tape storage so text could be "
     "recorded and replayed?"),
    ("multi_page.pdf", 1, "Wang 1200",
     "What dedicated office hardware with tiny displays and diskettes appeared in the seventies?"),
    ("multi_page.pdf", 1, "WordStar was one of",
     "Which program for an early microcomputer OS first popularised cutting and pasting?"),
    ("multi_page.pdf", 2, "Google Docs enabled real-time editing",
     "When did browser-based group editing of documents take off?"),
    ("multi_page.pdf", 2, "Open-source alternatives emerged",
     "Were there free community-built substitutes for the dominant office package?"),
    ("multi_page.pdf", 3, "LaTeX focuses on precise formatting",
     "What do scientists use to typeset complicated maths in their papers?"),
    ("multi_page.pdf", 3, "Final Draft and Celtx",
     "Which applications help people write scripts for movies and TV shows?"),
    ("multi_page.pdf", 3, "redlining (early version tracking)",
     "What capabilities made some editors popular with law firms?"),
    ("multi_page.pdf", 3, "Undo/Redo: Introduced in the 1980s",
     "When could writers first reverse a mistake with a single command?"),
    ("multi_page.pdf", 4, "Scrivener allowed authors",
     "Which program helps novelists keep a big book project organised?"),
    ("multi_page.pdf", 4, "Dragon NaturallySpeaking",
     "Which products let people speak instead of type their texts?"),
    ("multi_page.pdf", 4, "Immersive Interfaces",
     "Could people someday compose documents inside virtual worlds using headsets?"),
    ("multi_page.pdf", 4, "self- publishing, blogging",
     "How did cheap writing software open up publishing to amateurs?"),
    ("redp5110_sampled.pdf", 5, "increased in 2013 by 15% globally",
     "How much more expensive did a security incident become for companies in 2013?"),
    ("redp5110_sampled.pdf", 6, "confidentiality, integrity, and availability",
     "What three goals should a company's protection rules cover at a minimum?"),
    ("redp5110_sampled.pdf", 6, "system value is *CHANGE",
     "Why is business data often left unprotected when shops keep the shipped configuration?"),
    ("redp5110_sampled.pdf", 6, "menu-based security",
     "Why is restricting people through application option screens no longer enough?"),
    ("redp5110_sampled.pdf", 7, "need-to-know basis",
     "Should staff only see the minimum records needed to do their job?"),
    ("redp5110_sampled.pdf", 7, "*ALLOBJ access still can directly access",
     "Can an all-powerful user get around restrictions built into views?"),
    ("redp5110_sampled.pdf", 8, "CHGFCNUSG FCNID(QIBM_DB_SECADM)",
     "What command lets me allow a person to administer the access rules?"),
    ("redp5110_sampled.pdf", 9, "QIBM_DB_SECADM function usage grants authorities",
     "In the newest release, how can someone hand out privileges without being able to read "
     "the table contents?"),
    ("redp5110_sampled.pdf", 10, "A column mask is a database object",
     "What object decides what value a person sees in one particular field?"),
    ("redp5110_sampled.pdf", 11, "While the procedure is running, the special register USER",
     "When a routine runs with its owner's borrowed privileges, which identity does each "
     "session variable report?"),
    ("redp5110_sampled.pdf", 12, "It never returns the null value",
     "Can the group membership check come back empty?"),
    ("redp5110_sampled.pdf", 13, "first five characters replaced with",
     "What do supervisors see when they look at a worker's social security number?"),
    ("redp5110_sampled.pdf", 14, "ACTIVATE ROW ACCESS CONTROL",
     "Once the rules are written, which statement switches the protection on for the table?"),
    ("redp5110_sampled.pdf", 4, "taught database classes in Colombian universities",
     "Which of the writers used to lecture at South American colleges?"),
    ("redp5110_sampled.pdf", 15, "The index being advised is for the ORDER BY clause",
     "How does the optimizer's suggestion for speeding up the query differ with the rules on?"),
    ("2305.03393v1-pg9.pdf", 1, "OTSL yields a 2x speed up",
     "How much quicker is prediction with the compact table language than with markup?"),
    ("2305.03393v1-pg9.pdf", 1, "PubTables-1M (about 1M samples)",
     "On which public collections was the best configuration trained and tested?"),
    ("amt_handbook_sample.pdf", 1, "designed to hold tight despite severe vibration",
     "How does a one-piece metal locknut keep from loosening when shaken?"),
    ("amt_handbook_sample.pdf", 1, "accommodate a fiber locking collar",
     "Which fastener grips the bolt with a non-metallic insert ring?"),
    ("amt_handbook_sample.pdf", 1, "spun on and off by hand",
     "Which locknut turns freely with fingers until it is seated and tightened?"),
    ("table_mislabeled_as_picture.pdf", 1, "maximum caseload per lawyer",
     "Is there a cap on how many matters a public defender may handle at once?"),
    ("table_mislabeled_as_picture.pdf", 1, "what type of legal aid services is a student",
     "What are university pupils permitted to do when giving legal help?"),
]


def pdf_material(pdf_dir: Path) -> Material:
    """Chunk the real PDFs and attach the paraphrased questions (substrings are checked)."""
    from vistarag.agent.pdflib import pymupdf

    mat = Material("pdf")
    for path in sorted(pdf_dir.glob("*.pdf")):
        with pymupdf.open(path) as doc:
            for pno, page in enumerate(doc, start=1):
                for ci, chunk in enumerate(chunk_page(page.get_text())):
                    mat.docs.append(Doc(f"{path.name}#p{pno}c{ci}", chunk, path.name, pno))
    for pdf, page, needle, question in PDF_QUESTIONS:
        rel = {d.id for d in mat.docs
               if d.source == pdf and d.page == page and norm(needle) in norm(d.text)}
        if not rel:
            raise ValueError(f"answer not found: {pdf} p.{page} {needle!r}")
        mat.queries.append(Query(question, rel, "pdf"))
    return mat


# ----------------------------------------------------------------- generated long documents

COMPANIES = ["Altrion", "Brevik Labs", "Corvane", "Dunmore Systems", "Elvaro", "Fennick & Co",
             "Gastrell", "Holloway Works", "Istrana", "Jorvik Energy", "Kestrel Foods",
             "Lumora", "Marrowby", "Norwell Health"]
CITIES = ["Leeds", "Porto", "Tampere", "Graz", "Utrecht", "Bilbao", "Gdansk", "Aarhus", "Lyon"]
PEOPLE = ["Maria Okafor", "Tomas Lindqvist", "Aisha Rahman", "Daniel Ferreira", "Yuki Tanaka",
          "Grace Whitfield", "Omar Haddad", "Elena Rossi", "Samuel Boateng", "Ingrid Holm"]

# aspect -> (fact sentences, paraphrased question); {c} company, {x}/{y} fillers
ASPECTS: list[tuple[str, str]] = [
    ("{c} transferred its head office from {city1} to {city2} during the spring, saying the "
     "old premises had become too costly to lease.",
     "Where did {c} relocate its headquarters, and why?"),
    ("{c} began life in a rented garage in {city1}, set up by two former schoolteachers, "
     "{p1} and {p2}, who pooled their savings.",
     "Who originally established {c}?"),
    ("{c} let go of roughly {n} staff after orders for its devices collapsed, closing two "
     "assembly sites.",
     "Did {c} cut jobs when sales fell?"),
    ("A former supplier took {c} to court, alleging it had copied a protected hinge design; "
     "the dispute was settled privately for {money}.",
     "Was {c} ever sued over intellectual property?"),
    ("Turnover at {c} climbed to {money} in the last fiscal year, up {pct} percent, driven "
     "mostly by subscription income.",
     "How much money did {c} bring in during its most recent year?"),
    ("The board of {c} replaced its chief executive: {p1} took over the top job from {p2}, "
     "who stepped down after eleven years.",
     "Who leads {c} now, after the change at the helm?"),
    ("{c} pledged to run every factory on wind and solar electricity within a decade and to "
     "stop burning coal at its plants.",
     "What are {c}'s climate targets for renewable power?"),
    ("{c} bought the small robotics start-up {x} for an undisclosed sum, folding its "
     "engineers into the automation division.",
     "Which firm did {c} acquire recently?"),
    ("Intruders broke into {c}'s customer database and stole the email addresses of about "
     "{n} users before the flaw was patched.",
     "Has {c} suffered a data breach?"),
    ("{c} asked owners to return {n} space heaters after reports that units could overheat "
     "and catch fire.",
     "Why did {c} recall some of its products?"),
    ("Employees of {c} may now work from home three days a week, and the office desks were "
     "made bookable.",
     "What is {c}'s remote working policy?"),
    ("Shareholders of {c} will receive a payout of {cents} cents per share, the first since "
     "the pandemic.",
     "Does {c} pay dividends to investors?"),
]

# Generic report sentences; several reuse question words in unrelated senses (lexical traps).
FILLER = [
    "{c} publishes its annual report every March and holds an investor call the same week.",
    "The headquarters canteen of {c} now offers a vegetarian menu on weekdays.",
    "Analysts covering {c} describe the market as crowded and price-sensitive.",
    "{c} sponsors a youth football league and several local arts festivals.",
    "The company's logo was redesigned by an agency in {city1} last year.",
    "A new intranet gives {c} staff quick access to policies and travel forms.",
    "{c} hosted a hackathon where teams built tools to recall meeting notes automatically.",
    "Board meetings of {c} take place quarterly and minutes are archived for seven years.",
    "The firm's original establishment charter is on display in the lobby.",
    "Customer satisfaction surveys at {c} are run twice a year by an outside agency.",
    "{c} uses a shared calendar so that managers can plan leave around peak season.",
    "The sales team of {c} fell short of its target for the northern region.",
    "An internal newsletter at {c} highlights long-serving staff each month.",
    "{c} leads a working group on packaging standards with other manufacturers.",
    "The climate in the {city2} warehouse is controlled to protect sensitive stock.",
    "{c} recently refreshed its website and added a chat assistant for customers.",
    "Investors were invited to tour the new training centre opened by {c}.",
    "Most of {c}'s suppliers are located within three hundred kilometres of its plants.",
]


def _fill(template: str, rng: random.Random, c: str) -> str:
    p1, p2 = rng.sample(PEOPLE, 2)
    city1, city2 = rng.sample(CITIES, 2)
    return template.format(
        c=c, p1=p1, p2=p2, city1=city1, city2=city2, n=rng.randrange(200, 9000),
        money=f"{rng.randrange(2, 90)} million euros", pct=rng.randrange(3, 40),
        cents=rng.randrange(5, 95), x=rng.choice(["Gripwell", "Axonetic", "Robolink", "Tessel"]),
    )


def synthetic_reports(seed: int = 7, target_chars: int = 900, companies: int = 14,
                      max_queries: int = 60) -> Material:
    """One long report per company, one ~900-char chunk per aspect, padded with filler."""
    rng = random.Random(seed)
    mat = Material("reports")
    for c in COMPANIES[:companies]:
        for a, (fact, question) in enumerate(ASPECTS):
            parts = [_fill(fact, rng, c)]
            fillers = rng.sample(FILLER, len(FILLER))
            while sum(len(p) for p in parts) < target_chars and fillers:
                parts.insert(rng.randrange(len(parts) + 1), _fill(fillers.pop(), rng, c))
            did = f"{c}#a{a}"
            mat.docs.append(Doc(did, " ".join(parts), f"{c} annual report", a + 1))
            mat.queries.append(Query(question.format(c=c), {did}, "reports"))
    rng.shuffle(mat.queries)
    mat.queries = mat.queries[:max_queries]
    return mat


def paraphrase_material(data_dir: Path | None, seed: int = 7) -> Material:
    """Real PDFs (when present) plus generated reports."""
    mat = Material("paraphrase")
    if data_dir is not None and (data_dir / "pdfs").is_dir():
        mat.extend(pdf_material(data_dir / "pdfs"))
    mat.extend(synthetic_reports(seed=seed))
    return mat


# ------------------------------------------------------------- exact names / screenshots

APPS = ["Outlook", "Teams", "OneDrive", "Chrome", "Edge", "Slack", "Zoom", "Excel"]
ERRS = ["ERR_CONN_RESET", "ERR_CONN_REFUSED", "ERR_CONNECTION_TIMED_OUT", "ERR_NAME_NOT_RESOLVED",
        "ERR_CERT_DATE_INVALID", "ERR_SSL_PROTOCOL_ERROR", "ERR_PROXY_CONNECTION_FAILED",
        "ERR_NETWORK_CHANGED", "ERR_TOO_MANY_REDIRECTS", "ERR_ACCESS_DENIED"]
ACTIONS = ["sync your files", "sign you in", "load this page", "send the message",
           "connect to the server", "open the workbook"]
FIRST = ["Anna", "Anne", "Ana", "John", "Jon", "Priya", "Pria", "Mohammed", "Muhammad", "Li",
         "Lee", "Sara", "Sarah", "Erik", "Eric"]
LAST = ["Raman", "Ramen", "Schmidt", "Schmitt", "Nguyen", "Nguen", "Kowalski", "Kovalski",
        "Okafor", "Okafur", "Larsen", "Larson"]
TITLES = ["Senior Engineer", "Product Manager", "Data Analyst", "Support Lead", "Designer"]
DEPTS = ["Platform", "Payments", "Mobile", "Research", "Customer Care"]
PRODUCTS = ["TrailRunner 3 Waterproof Jacket", "TrailRunner 3 Softshell Jacket",
            "Summit Pro 45L Backpack", "Summit Pro 55L Backpack", "Glide Merino Base Layer"]
COLOURS = ["Black", "Navy", "Olive", "Red"]
SIZES = ["S", "M", "L", "XL"]


def _hex(rng: random.Random) -> str:
    return f"0x8007{rng.randrange(0, 0xFFFF):04X}"


def generated_exact(seed: int = 11, scale: float = 1.0) -> Material:
    """Near-duplicate OCR-like texts whose only distinguishing content is a name or an ID."""
    rng = random.Random(seed)
    mat = Material("generated")
    # error dialogs
    for i in range(int(90 * scale)):
        app, err, hx = rng.choice(APPS), rng.choice(ERRS), _hex(rng)
        when = f"{rng.randrange(1, 12)}:{rng.randrange(60):02d} PM | 11/{rng.randrange(1, 29)}/2024"
        text = (f"{app} | Something went wrong | We couldn't {rng.choice(ACTIONS)}. | "
                f"Error code: {err} ({hx}) | Try again | Close | Send feedback | {when}")
        did = f"err{i}"
        mat.docs.append(Doc(did, text, "dialog.png"))
        q = rng.choice([f"{err} {hx}", f"{hx}", f"what does error {hx} mean in {app}?",
                        f"{app} error code {hx}"])
        mat.queries.append(Query(q, {did}, "error", key=hx))
    # product pages
    for i in range(int(60 * scale)):
        prod, col, size = rng.choice(PRODUCTS), rng.choice(COLOURS), rng.choice(SIZES)
        sku = (f"{prod[:2].upper()}{rng.randrange(1, 9)}-{rng.randrange(1000, 9999)}-"
               f"{col[:3].upper()}-{size}")
        text = (f"Home > Outdoor > Jackets & Packs | {prod} | {col} / {size} | SKU: {sku} | "
                f"${rng.randrange(79, 349)}.00 | In stock: {rng.randrange(0, 40)} | Add to cart | "
                "Free returns within 30 days | Reviews (128)")
        did = f"sku{i}"
        mat.docs.append(Doc(did, text, "shop.png"))
        q = rng.choice([sku, f"price of {sku}", f"is {sku} in stock?"])
        mat.queries.append(Query(q, {did}, "sku", key=sku))
    # staff directory cards
    seen: set[str] = set()
    for i in range(int(70 * scale)):
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        if name in seen:
            continue
        seen.add(name)
        email = name.lower().replace(" ", ".") + "@northwind.example"
        text = (f"People directory | Search people | {name} | {rng.choice(TITLES)} | "
                f"{rng.choice(DEPTS)} | {email} | Ext. {rng.randrange(2000, 2999)} | "
                "Chat | Call | Schedule meeting | Available")
        did = f"person{i}"
        mat.docs.append(Doc(did, text, "directory.png"))
        q = rng.choice([name, f"{name} extension", f"what team is {name} on?"])
        mat.queries.append(Query(q, {did}, "person", key=name))
    # file listings (several files per screenshot, versions nearly identical)
    stems = ["Q3_budget", "Q4_budget", "roadmap_2025", "board_deck", "hiring_plan", "invoice_0420"]
    exts = ["xlsx", "pptx", "docx", "pdf"]
    files_seen: dict[str, set[str]] = {}
    for i in range(int(40 * scale)):
        files = [f"{rng.choice(stems)}_v{rng.randrange(1, 6)}"
                 f"{rng.choice(['', '_final', '_draft'])}.{rng.choice(exts)}" for _ in range(5)]
        rows = " | ".join(f"{f} | 10/{rng.randrange(1, 31)}/2024 | {rng.randrange(12, 900)} KB"
                          for f in files)
        did = f"files{i}"
        mat.docs.append(Doc(did, f"File Explorer | Documents > Finance | Name | Date modified | "
                                 f"Size | {rows} | 5 items", "explorer.png"))
        for f in files:
            files_seen.setdefault(f, set()).add(did)
    for f, dids in sorted(files_seen.items()):
        if len(dids) <= 2 and rng.random() < 0.5:
            mat.queries.append(Query(rng.choice([f, f"open {f}"]), set(dids), "file", key=f))
    return mat


def _mutate(lines: list[str], pool: list[str], rng: random.Random) -> list[str]:
    """A near-duplicate screen: some digits changed (times, dates, builds, counters) and a
    few lines swapped for lines seen on other screens (other tabs, names, titles)."""

    def digits(m: re.Match[str]) -> str:
        return "".join(str(rng.randrange(10)) for _ in m.group(0))

    out = []
    for ln in lines:
        if rng.random() < 0.4:
            ln = rng.choice(pool)
        out.append(re.sub(r"\d+", lambda m: digits(m) if rng.random() < 0.6 else m.group(0), ln))
    return out


def ocr_screenshots(shot_dir: Path) -> dict[str, list[str]]:
    """OCR lines of each real screenshot (the app's RapidOCR engine)."""
    from PIL import Image

    from vistarag.agent.ocr import get_ocr

    engine = get_ocr()
    out: dict[str, list[str]] = {}
    for path in sorted(shot_dir.glob("*.png")):
        with Image.open(path) as image:
            out[path.name] = [line.text for line in engine.read(image)]
    return out


def screenshot_material(ocr: dict[str, list[str]], seed: int = 5, variants: int = 6) -> Material:
    """Real OCR text plus near-duplicate variants; queries are exact strings seen on screen."""
    rng = random.Random(seed)
    mat = Material("screenshots")
    pool = [ln for lines in ocr.values() for ln in lines if len(ln) >= 4]
    for name, lines in ocr.items():
        variants_lines = [lines] + [_mutate(lines, pool, rng) for _ in range(variants)]
        for v, vl in enumerate(variants_lines):
            mat.docs.append(Doc(f"{name}#v{v}", " | ".join(vl), name))
        cands = [ln for ln in lines if len(ln) >= 6 and sum(c.isalnum() for c in ln) >= 4]
        for ln in rng.sample(cands, min(15, len(cands))):
            mat.queries.append(Query(ln, set(), "screenshot", key=ln))
    return mat


def exact_material(data_dir: Path | None, ocr: bool = True, seed: int = 11) -> Material:
    """Generated near-duplicates plus (when present and ``ocr``) real screenshots."""
    mat = Material("exact")
    mat.extend(generated_exact(seed=seed))
    shots = data_dir / "screenshots" if data_dir is not None else None
    if ocr and shots is not None and shots.is_dir():
        mat.extend(screenshot_material(ocr_screenshots(shots), seed=seed))
    mat.resolve_keys()
    # keep strings that tell a screen apart from most of its near-duplicates
    mat.queries = [q for q in mat.queries if 0 < len(q.relevant) <= 4]
    return mat
