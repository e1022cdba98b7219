"""One self-contained report.html: plots as inline SVG (matplotlib), thumbnails as data URLs."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable
from pathlib import Path

from vistarag.evals.report import RunReport, SuiteReport, TurnReport

BlobPath = Callable[[str], Path | None]
PASS, FAIL, SKIP = "#2da44e", "#cf222e", "#8c959f"

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1120px;color:#1f2328}
h1{font-size:24px} h2{border-bottom:1px solid #d0d7de;padding-bottom:4px;margin-top:36px}
table{border-collapse:collapse;margin:8px 0} td,th{border:1px solid #d0d7de;padding:3px 8px;
text-align:left;vertical-align:top} th{background:#f6f8fa}
.pass{color:#1a7f37;font-weight:600} .fail{color:#cf222e;font-weight:600} .skip{color:#6e7781}
.plots{display:flex;flex-wrap:wrap;gap:16px} .plots figure{margin:0;border:1px solid #d0d7de;
padding:6px;border-radius:6px} .plots svg{width:520px;height:auto}
.turn{border:1px solid #f0c0c0;border-radius:6px;padding:8px 12px;margin:12px 0;background:#fffafa}
.thumbs{display:flex;flex-wrap:wrap;gap:8px} .thumbs figure{margin:0;width:170px;font-size:11px}
.thumbs img{max-width:170px;max-height:130px;border:3px solid #ccc;display:block}
.thumbs img.rel{border-color:#2da44e} code{background:#f6f8fa;padding:0 3px}
"""


def _svg(fig: object) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _plots(suite: SuiteReport) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "vistarag", "font.size": 10})
    out: list[tuple[str, str]] = []
    if suite.recall_curve:
        fig, ax = plt.subplots(figsize=(5.2, 3.2))
        ks = list(range(1, len(suite.recall_curve) + 1))
        ax.plot(ks, suite.recall_curve, marker="o", color="#0969da")
        ax.set(xlabel="k", ylabel="mean recall@k", ylim=(0, 1.05), xticks=ks,
               title="Recall@k")
        ax.grid(alpha=0.3)
        out.append(("Recall@k over turns with expected sources", _svg(fig)))
    if suite.node_latency:
        names = list(suite.node_latency)
        p50 = [suite.node_latency[n].get("p50") or 0 for n in names]
        p95 = [suite.node_latency[n].get("p95") or 0 for n in names]
        fig, ax = plt.subplots(figsize=(5.2, 0.45 * len(names) + 1.2))
        y = range(len(names))
        ax.barh([i + 0.2 for i in y], p50, height=0.4, label="p50", color="#54aeff")
        ax.barh([i - 0.2 for i in y], p95, height=0.4, label="p95", color="#0550ae")
        ax.set_yticks(list(y), names)
        ax.invert_yaxis()
        ax.set(xlabel="ms", title="Latency per node")
        ax.legend(loc="lower right")
        out.append(("Latency per graph node", _svg(fig)))
    convs = suite.conversations
    if convs:
        fig, ax = plt.subplots(figsize=(5.2, 0.32 * len(convs) + 1.2))
        names = [c.name for c in convs]
        passed = [0 if c.skipped else sum(t.passed for t in c.turns) for c in convs]
        failed = [0 if c.skipped else sum(not t.passed for t in c.turns) for c in convs]
        skipped = [len(c.turns) if c.skipped else 0 for c in convs]
        y = list(range(len(names)))
        ax.barh(y, passed, color=PASS, label="passed")
        ax.barh(y, failed, left=passed, color=FAIL, label="failed")
        ax.barh(y, skipped, left=[a + b for a, b in zip(passed, failed, strict=True)],
                color=SKIP, label="skipped")
        ax.set_yticks(y, names)
        ax.invert_yaxis()
        ax.set(xlabel="turns", title="Turns per conversation")
        ax.legend(loc="lower right", fontsize=8)
        out.append(("Pass/fail per conversation", _svg(fig)))
    return out


def _thumb(ref: str | None, blob_path: BlobPath | None, side: int = 240) -> str | None:
    """A retrieved image as a small PNG data URL (None when it has no image on disk)."""
    if not ref or blob_path is None:
        return None
    path = blob_path(ref)
    if path is None or not path.is_file():
        return None
    from PIL import Image

    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail((side, side))
            buf = io.BytesIO()
            image.save(buf, format="PNG", optimize=True)
    except OSError:
        return None
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _badge(ok: bool, yes: str = "PASSED", no: str = "FAILED") -> str:
    return f'<span class="pass">{yes}</span>' if ok else f'<span class="fail">{no}</span>'


def _e(text: object) -> str:
    return html.escape(str(text))


def _failed_turn(conv_name: str, turn: TurnReport, blob_path: BlobPath | None) -> str:
    rows = "".join(
        f"<tr><td>{_e(c.name)}</td><td>{_e(c.expected)}</td><td>{_e(c.actual)}</td></tr>"
        for c in turn.failures
    )
    thumbs = []
    for hit in turn.retrieved:
        url = _thumb(hit.blob, blob_path)
        img = (f'<img src="{url}" class="{"rel" if hit.relevant else ""}" alt="{_e(hit.where)}">'
               if url else "")
        mark = " ✓" if hit.relevant else ""
        thumbs.append(f"<figure>{img}<figcaption>#{hit.rank} {_e(hit.modality)} "
                      f"{_e(hit.where)}{mark}<br>{_e(hit.text[:90])}</figcaption></figure>")
    return (
        f'<div class="turn"><b>{_e(conv_name)}</b> turn {turn.index}: {_e(turn.text)}'
        f"<table><tr><th>check</th><th>expected</th><th>actual</th></tr>{rows}</table>"
        f"<p><b>Answer</b> ({_e(turn.synthesizer)}, path {_e(turn.path)}): "
        f"{_e(turn.answer[:600])}</p>"
        f'<p><b>Retrieved</b> (green border: relevant)</p><div class="thumbs">{"".join(thumbs)}'
        "</div></div>"
    )


def _suite_html(suite: SuiteReport, blob_path: BlobPath | None) -> str:
    status = _badge(suite.passed)
    limits = {t.metric: t for t in suite.thresholds}
    rows = []
    for metric, value in suite.aggregate.items():
        shown = "–" if value is None else (f"{value:.0f}" if metric.endswith("_ms")
                                           else f"{value:.3f}")
        limit = limits.get(metric)
        cell = ""
        if limit is not None:
            op = "≤" if limit.upper_bound else "≥"
            cls = "pass" if limit.passed else "fail"
            cell = f'<span class="{cls}">{op} {limit.threshold:g}</span>'
        rows.append(f"<tr><td>{_e(metric)}</td><td>{shown}</td><td>{cell}</td></tr>")
    convs = []
    for conv in suite.conversations:
        if conv.skipped:
            result = f'<span class="skip">skipped: {_e(conv.skipped)}</span>'
        else:
            result = _badge(conv.passed, "pass", "fail")
        done = "–" if conv.skipped else sum(t.passed for t in conv.turns)
        convs.append(f"<tr><td>{_e(conv.name)}</td><td>{_e(conv.mode or '')}</td>"
                     f"<td>{done}/{len(conv.turns)}</td><td>{result}</td></tr>")
    plots = "".join(f"<figure>{svg}<figcaption>{_e(title)}</figcaption></figure>"
                    for title, svg in _plots(suite))
    failures = "".join(_failed_turn(c.name, t, blob_path) for c, t in suite.turns()
                       if c.skipped is None and not t.passed)
    ran = "; ".join(f"{_e(k)}: " + ", ".join(f"{_e(n)} ×{v}" for n, v in counts.items())
                    for k, counts in suite.ran.items() if counts)
    return (
        f"<h2>{_e(suite.name)}: {status}</h2><p>{_e(suite.description)}</p>"
        f"<p>Knowledge base <code>{_e(suite.kb)}</code>, {suite.seconds:.1f} s. "
        f"What ran: {ran or 'nothing'}.</p>"
        f'<div class="plots">{plots}</div>'
        f"<h3>Metrics</h3><table><tr><th>metric</th><th>value</th><th>threshold</th></tr>"
        f"{''.join(rows)}</table>"
        f"<h3>Conversations</h3><table><tr><th>name</th><th>mode</th><th>turns passed</th>"
        f"<th>result</th></tr>{''.join(convs)}</table>"
        + (f"<h3>Failed turns</h3>{failures}" if failures else "")
    )


def write_html(run: RunReport, path: Path, blob_path: BlobPath | None = None) -> Path:
    """Write the report; ``blob_path`` maps a blob ref to its file for failed-turn thumbnails."""
    status = _badge(run.passed)
    body = "".join(_suite_html(s, blob_path) for s in run.suites)
    page = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>VistaRAG eval report</title><style>{CSS}</style></head><body>"
        f"<h1>VistaRAG eval report: {status}</h1>"
        f"<p>Created {_e(run.created)}; vistarag {_e(run.vistarag_version or '(dev)')}.</p>"
        f"{body}</body></html>"
    )
    path.write_text(page, encoding="utf-8")
    return path
