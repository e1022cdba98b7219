"""Generated web pages rendered to screenshots, for retrieval benchmarks and tests.

``generate(n, seed)`` writes varied small sites (a title, a nav bar, a cookie banner, a footer,
"Skip to main content" links in several languages, body text on the page's topic) as HTML;
``render`` screenshots them in headless Chromium (Playwright + Debian's ``/usr/bin/chromium``).
Each page's ``<title>`` is printed as its heading, so the title is a question whose answer is
the screenshot. A few pages carry generic headers ("The Company", "Our Company", "Home") that
look like company names to a naive rule.
"""

from __future__ import annotations

import html
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")

SKIP_LINKS = (
    "Skip to main content", "Passa al contingut principal", "Saltar al contenido principal",
    "Zum Hauptinhalt springen", "Aller au contenu principal", "Vai al contenuto principale",
)
NAVS = (
    ("Home", "About", "Services", "Blog", "Contact"),
    ("Products", "Pricing", "Docs", "Support", "Sign in"),
    ("Inici", "Qui som", "Serveis", "Notícies", "Contacte"),
    ("Start", "Über uns", "Leistungen", "Kontakt"),
    ("Menu", "Recipes", "Shop", "Events", "Visit"),
)
COOKIES = (
    "We use cookies to improve your experience. Accept all cookies",
    "This website uses cookies. By continuing you agree to our cookie policy.",
    "Utilitzem galetes per millorar la vostra experiència. Acceptar",
)
GENERIC_HEADERS = ("The Company", "Our Company", "Home", "Welcome", "Main Menu")
PLACES = ("Leeds", "Bristol", "Girona", "Lyon", "Porto", "Austin", "Denver", "Utrecht", "Graz",
          "Cork", "Tampere", "Brno", "Oaxaca", "Hobart", "Kyoto")
BRAND_A = ("Harbor", "Cedar", "Blue", "Copper", "North", "Maple", "Silver", "Lantern", "Orchid",
           "Granite", "Willow", "Falcon", "Juniper", "Saffron", "Tidal", "Ember", "Quartz",
           "Meadow", "Atlas", "Pioneer")
BRAND_B = ("Lane", "Works", "Studio", "Labs", "Collective", "House", "Field", "Forge", "Point",
           "Garden", "Bay", "Row")
# topic: (business kind, page titles, words its body uses)
TOPICS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("Bakery", ("Sourdough Starter Guide", "Wedding Cake Tasting Days", "Gluten Free Breads"),
     ("flour", "oven", "crust", "rye", "proof", "loaf", "butter", "pastry")),
    ("Plumbing", ("Emergency Boiler Repair", "How to Fix the Leaking Tap", "Skip Hire Prices"),
     ("pipe", "valve", "boiler", "leak", "radiator", "engineer", "drain", "pressure")),
    ("Cycling", ("Gravel Bike Fitting Service", "Winter Tyre Buying Guide",
                 "Meet the Riders Club"),
     ("frame", "gears", "saddle", "tyre", "route", "climb", "brake", "wheel")),
    ("Dental", ("Teeth Whitening Prices", "Children's Dental Checkups", "Invisible Braces FAQ"),
     ("tooth", "enamel", "hygienist", "brace", "gum", "implant", "clinic", "smile")),
    ("Software", ("Release Notes Version 4.2", "Main Content Security Policy Headers",
                  "API Rate Limits Explained"),
     ("endpoint", "token", "deploy", "latency", "cache", "webhook", "schema", "cluster")),
    ("Gardening", ("Planting Spring Bulbs", "Compost Bin Buying Guide", "Pruning the Fruit Trees"),
     ("soil", "bulb", "seed", "compost", "prune", "bloom", "mulch", "orchard")),
    ("Travel", ("Weekend Itinerary for Three Days", "Best Time to Visit the Coast",
                "Night Train Routes"),
     ("ferry", "hostel", "itinerary", "passport", "coast", "museum", "train", "luggage")),
    ("Fitness", ("Beginner Kettlebell Program", "Yoga Class Timetable", "Personal Training Fees"),
     ("squat", "stretch", "cardio", "coach", "mat", "interval", "muscle", "warmup")),
    ("Legal", ("Tenant Rights Explained", "Privacy Policy Template for Shops",
               "Small Claims Court Steps"),
     ("lease", "tenant", "court", "contract", "claim", "solicitor", "landlord", "deposit")),
    ("Coffee", ("Single Origin Ethiopian Beans", "Espresso Grinder Comparison",
                "The Cold Brew Ratios"),
     ("roast", "crema", "grinder", "brew", "arabica", "barista", "filter", "aroma")),
    ("Pets", ("Puppy Training Classes", "Cat Vaccination Schedule", "Grooming Price List"),
     ("puppy", "leash", "vet", "kitten", "groom", "kennel", "collar", "treats")),
    ("Design", ("Portfolio of Brand Identities", "Responsive Website Packages",
                "The Logo Design Process"),
     ("typography", "palette", "wireframe", "mockup", "brand", "layout", "grid", "client")),
    ("Music", ("Piano Lessons for Adults", "Guitar Repair and Setup", "Summer Concert Series"),
     ("chord", "piano", "rehearsal", "guitar", "string", "tempo", "choir", "stage")),
    ("Energy", ("Solar Panel Installation Costs", "Heat Pump Grants", "Home Battery Storage"),
     ("solar", "inverter", "kilowatt", "battery", "grid", "tariff", "insulation", "meter")),
)
SENTENCES = (
    "Our {kind} team in {place} has worked with local customers for {n} years.",
    "Ask about the {w1} and {w2} options before you book.",
    "Most visitors choose the {w1} package; the {w2} add-on costs extra.",
    "Read how we handle {w1}, {w2} and {w3} for every order.",
    "Open Monday to Saturday; call ahead for {w1} appointments.",
    "Prices include {w1} and a free {w2} check.",
)


@dataclass
class WebPage:
    """One generated page: its file stem, title (the question) and header brand."""

    name: str
    title: str
    brand: str
    html: str


def _page(i: int, rng: random.Random, brand: str) -> WebPage:
    kind, titles, words = TOPICS[i % len(TOPICS)]
    place = rng.choice(PLACES)
    header = brand
    if i % 29 == 11:  # a web-design firm whose page reads "The Company"; other generic headers
        header = GENERIC_HEADERS[(i // 29) % len(GENERIC_HEADERS)]
        brand = header
    topic = titles[(i // len(TOPICS)) % len(titles)]
    title = rng.choice((f"{topic} | {brand}", f"{topic} - {brand} {place}",
                        f"{topic} at {brand}", f"{brand}: {topic}"))
    body = []
    for _ in range(rng.randint(2, 4)):
        w1, w2, w3 = rng.sample(words, 3)
        body.append(rng.choice(SENTENCES).format(
            kind=kind.lower(), place=place, n=rng.randint(2, 40), w1=w1, w2=w2, w3=w3))
    nav = rng.choice(NAVS)
    bg = rng.choice(("#ffffff", "#f6f3ee", "#eef4f8", "#1f2933"))
    fg = "#f5f7fa" if bg == "#1f2933" else "#1f2933"
    accent = rng.choice(("#2563eb", "#b45309", "#047857", "#be123c", "#6d28d9"))
    year = rng.randint(2015, 2025)
    esc = html.escape
    doc = f"""<!doctype html><html><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>body{{margin:0;font-family:{rng.choice(("sans-serif", "serif", "monospace"))};
background:{bg};color:{fg}}} header{{display:flex;gap:28px;padding:14px 40px;
background:{accent};color:#fff;font-size:18px}} .skip{{font-size:13px;padding:4px 40px}}
main{{padding:30px 40px;max-width:900px}} h1{{font-size:{rng.randint(30, 42)}px}}
p{{font-size:18px;line-height:1.5}} footer{{position:fixed;bottom:0;left:0;right:0;
padding:12px 40px;font-size:14px;background:#0002}} .cookie{{margin:18px 40px;padding:10px;
border:1px solid {accent};font-size:14px}}</style></head><body>
<div class="skip">{esc(rng.choice(SKIP_LINKS))}</div>
<header><b>{esc(header)}</b>{"".join(f"<span>{esc(n)}</span>" for n in nav)}</header>
<div class="cookie">{esc(rng.choice(COOKIES))}</div>
<main><h1>{esc(title)}</h1>{"".join(f"<p>{esc(s)}</p>" for s in body)}</main>
<footer>&copy; {year} {esc(brand)}. All rights reserved. Privacy Policy &middot; Terms
&middot; Contact</footer></body></html>"""
    return WebPage(f"web-{i:03d}", title, brand, doc)


def generate(n: int = 120, seed: int = 19) -> list[WebPage]:
    """``n`` pages, the same ones for the same seed."""
    rng = random.Random(seed)
    brands = [f"{a} {b}" for a in BRAND_A for b in BRAND_B]
    rng.shuffle(brands)
    return [_page(i, rng, brands[i % len(brands)]) for i in range(n)]


def render(pages: list[WebPage], out: Path, size: tuple[int, int] = (1280, 800)) -> list[Path]:
    """Screenshots of ``pages`` as ``out/<name>.png`` (kept: existing files are not redrawn),
    plus ``out/titles.json`` (name -> title)."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{p.name}.png" for p in pages]
    todo = [(p, path) for p, path in zip(pages, paths, strict=True) if not path.exists()]
    if todo:
        if not CHROMIUM.exists():
            raise SystemExit(f"{CHROMIUM} not found: install Debian's chromium package "
                             "(apt-get install chromium) to render the web pages")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
            tab = browser.new_page(viewport={"width": size[0], "height": size[1]})
            for page, path in todo:
                tab.set_content(page.html, wait_until="load")
                tab.screenshot(path=str(path))
            browser.close()
    meta = {p.name: {k: v for k, v in asdict(p).items() if k != "html"} for p in pages}
    (out / "titles.json").write_text(json.dumps(meta, indent=1))
    return paths
