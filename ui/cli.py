"""The ``vistarag`` command line (typer + rich)."""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vistarag.agent.errors import KnowledgeBaseNotFound, VistaRAGError
from vistarag.agent.types import plural
from vistarag.evals.cli import eval_app
from vistarag.ui.cli_help import Command, Group
from vistarag.ui.cli_progress import PagesDone, reading_line

if TYPE_CHECKING:  # heavy modules load lazily, so --help and status stay fast
    from vistarag.agent.engine import Engine
    from vistarag.agent.ingest.pipeline import FileResult
    from vistarag.agent.settings import Settings
    from vistarag.agent.types import Hit


app = typer.Typer(
    cls=Group,
    help="VistaRAG: chat with your documents, screenshots, images and videos.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
kb_app = typer.Typer(cls=Group, help="Manage knowledge bases.", no_args_is_help=True)
app.add_typer(kb_app, name="kb")
app.add_typer(eval_app, name="eval")
out = Console()
err = Console(stderr=True, soft_wrap=True)  # one line per message, also in logs and CI

KbOpt = Annotated[
    str | None,
    typer.Option("--kb", metavar="NAME", help="Knowledge base name (default: default)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", metavar="", help="Print JSON instead of a table.")]


@app.callback()
def _main(
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            metavar="DIR",
            help="Data dir for this command (default: VISTARAG_HOME, else one per user).",
        ),
    ] = None,
) -> None:
    """VistaRAG: chat with your documents, screenshots, images and videos."""
    if home is not None:
        os.environ["VISTARAG_HOME"] = str(home.expanduser().resolve())


def _engine(kb: str | None = None) -> Engine:
    from vistarag.agent.engine import Engine
    from vistarag.agent.settings import Settings

    settings = Settings()
    if kb:
        settings = settings.model_copy(update={"kb": kb})
    if not settings.qdrant_url:
        _migrate(settings.qdrant_dir)
    return Engine(settings)


def _migrate(qdrant_dir: Path) -> dict | None:
    """Move a local-mode index to Qdrant Edge (once), with a progress bar; None if not needed."""
    from vistarag.agent.index.migrate import migrate_if_needed, needs_migration

    if not needs_migration(qdrant_dir):
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("[bold]moving to Qdrant Edge"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.description}"), console=err, transient=True,
    ) as progress:
        tasks: dict[str, Any] = {}

        def step(collection: str, done: int, total: int) -> None:
            if collection not in tasks:
                tasks[collection] = progress.add_task(collection, total=total)
            progress.update(tasks[collection], completed=done)

        try:
            return migrate_if_needed(qdrant_dir, step)
        except VistaRAGError as exc:
            _fail(exc)
    return None


def _build_index(engine: Engine) -> None:
    """After an ingest: build HNSW for a large knowledge base. Qdrant Edge builds it in a child
    process beside the serving index, so searches and ingests through this process go on."""
    from vistarag.agent.index import HNSW_MIN_POINTS

    kb = engine.kb()
    if kb.client is not None or not kb.exists():
        return  # a server indexes in the background
    if not kb.needs_index(HNSW_MIN_POINTS):
        return  # small (every search exact, in milliseconds) or indexed already
    points = kb.count()
    started = time.perf_counter()
    with err.status(
        f"building the HNSW index over {points:,} points in a background process (about "
        f"{points / 400 / 60:.0f} min; searches work meanwhile, scanning every point)"
    ):
        built = kb.optimize(HNSW_MIN_POINTS, wait=True)
    if built:
        err.print(f"HNSW index built in {time.perf_counter() - started:.0f} s")


def _fail(exc: Exception) -> None:
    err.print(f"[red]error:[/red] {escape(str(exc))}")
    raise typer.Exit(2)


def _require_points(engine: Engine) -> None:
    """Fail fast, before any model loads, when the knowledge base is missing or empty."""
    name, home = engine.settings.kb, engine.settings.home
    kb = engine.kb()
    if not kb.exists():
        raise KnowledgeBaseNotFound(
            f"no knowledge base {name!r} in {home}: add files first with "
            f"`vistarag ingest PATH --kb {name}` (`vistarag status` lists what there is)"
        )
    if kb.count() == 0:
        raise KnowledgeBaseNotFound(
            f"knowledge base {name!r} in {home} is empty: add files with "
            f"`vistarag ingest PATH --kb {name}`"
        )


def _show_notices(engine: Engine, kb: str | None = None) -> None:
    """Notices this knowledge base has not shown yet (each is shown once per knowledge base)."""
    from vistarag.agent.notices import pending_notices

    for notice in pending_notices(engine.models, kb or engine.settings.kb):
        err.print(f"[yellow]notice:[/yellow] {escape(notice)}")


@app.command(cls=Command)
def ingest(
    paths: Annotated[list[Path], typer.Argument(metavar="PATH",
        help="Files and folders (recursive): documents, images and videos.")],
    kb: KbOpt = None,
    include: Annotated[list[str] | None, typer.Option(
        "--include", metavar="GLOB",
            help="Only files matching this glob (repeatable); also lets sidecars in.",
    )] = None,
    exclude: Annotated[list[str] | None, typer.Option(
        "--exclude", metavar="GLOB", help="Leave out files matching this glob (repeatable).",
    )] = None,
    workers: Annotated[int | None, typer.Option(
        "--workers", metavar="N", min=1,
        help="Files ingested at once, and texts in the text model at once (default: the "
        "cores); 1 leaves the other cores free.",
    )] = None,
    ray: Annotated[str | None, typer.Option(
        "--ray", metavar="ADDRESS",
        help="Extract and embed on Ray (the `ray` extra): `local` starts a local instance; "
        "`auto` or `ray://head:10001` joins a cluster.",
    )] = None,
) -> None:
    """Add PDFs, images, screenshots, text files and videos to a knowledge base.

    Videos (mp4, m4v, webm, mov, mkv, avi; the `video` extra) give keyframes and what is said, each
    cited at its time; an .srt or .vtt beside a video is used instead of transcribing it.
    """
    engine = _engine(kb)
    try:
        ingestor = engine.ingestor()
        # Loaded before the progress bar starts; a user's first ingest also exports the text
        # model to ONNX (about 10 s, once), so say what the wait is.
        with err.status("loading models (the first run also prepares the text model)"):
            ingestor.prepare_models(workers)
    except VistaRAGError as exc:
        _fail(exc)
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from vistarag.agent.ingest.discover import select

    _show_notices(engine)
    selection = select(paths, include or (), exclude or ())
    with Progress(
        TextColumn("[bold]ingest"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("{task.description}"), console=err, transient=False,
    ) as progress:
        task = progress.add_task("", total=len(selection.files) + len(selection.skipped))
        pages = PagesDone()  # over all files: "297 pages stored, 15.2 pages/s"
        now = ""  # what the file being read is at: "report.pdf: page 12/30"

        def show(doing: str | None = None) -> None:
            nonlocal now
            now = now if doing is None else doing
            overall = pages.line()
            progress.update(task, description=" · ".join(t for t in (now, overall) if t))

        def on_file(path: Path) -> None:
            show(path.name)

        def on_progress(path: Path, stage: str, done: float, total: float | None) -> None:
            if stage == "stored":
                pages.update(path, done)
            show(reading_line(path.name, stage, done, total))

        def on_result(result: FileResult) -> None:
            if result.pages:
                pages.update(result.path, result.pages)
            if pages.done:  # between files, and at the end: the pages of all files so far
                show("")
            where, message = escape(result.path), escape(result.message)
            if result.status == "error":
                progress.console.print(f"[red]error[/red] {where}: {message}")
            elif result.status == "skipped":
                progress.console.print(f"[yellow]skipped[/yellow] {where}: {message}")
            for warning in result.warnings:
                progress.console.print(f"[yellow]warning[/yellow] {where}: {escape(warning)}")
            if result.kind == "video" and result.status in ("added", "replaced"):
                progress.console.print(_video_line(result))
            progress.advance(task)

        try:
            if ray is not None:
                from vistarag.agent.ingest.ray_ingest import RayOptions, ingest_with_ray

                options = RayOptions(address=None if ray == "local" else ray)
                report = ingest_with_ray(ingestor, selection, options, on_result=on_result)
            else:
                report = ingestor.ingest_selection(
                    selection, on_file=on_file, on_result=on_result, on_progress=on_progress,
                    workers=workers,
                )
        except VistaRAGError as exc:
            _fail(exc)
    try:
        _build_index(engine)
    except VistaRAGError as exc:
        _fail(exc)
    s = report.summary()
    rate = f" ({s['pages'] / s['seconds']:.1f} pages/s)" if s["pages"] and s["seconds"] else ""
    err.print(
        f"[bold]{plural(int(s['files']), 'file')}[/bold]: {s['added']} added, "
        f"{s['replaced']} replaced, {s['unchanged']} unchanged, {s['skipped']} skipped, "
        f"[{'red' if s['errors'] else 'green'}]{plural(int(s['errors']), 'error')}[/]; "
        f"{plural(int(s['points']), 'point')} ({plural(int(s['pages']), 'page')}, "
        f"{plural(int(s['images']), 'image')}) in {s['seconds']} s{rate} "
        f"into knowledge base {engine.settings.kb!r}"
    )
    if s["videos"]:
        err.print(
            f"videos: {s['videos']}, {s['keyframes']} keyframes, "
            f"{s['transcript_segments']} transcript segments"
        )
    if report.errors:
        raise typer.Exit(1)


def _video_line(result: FileResult) -> str:
    """``video talk.mp4 (12:04): 31 keyframes, 214 transcript segments (speech)``."""
    from vistarag.agent.types import clock

    st = result.stats
    source = "subtitles" if st.get("subtitles") else "speech"
    segments = plural(result.transcript_segments, "transcript segment")
    segments += f" ({source})" if result.transcript_segments else ""
    return (
        f"[green]video[/green] {escape(Path(result.path).name)} "
        f"({clock(st.get('duration_s', 0))}): {plural(result.keyframes, 'keyframe')}, {segments}"
    )


def _modalities(values: list[str] | None) -> list[str] | None:
    """``--modality keyframe,transcript`` and repeated ``--modality`` both work."""
    if not values:
        return None
    return [m.strip() for v in values for m in v.split(",") if m.strip()] or None


def _print_hits(hits: list[Hit], title: str) -> None:
    from vistarag.agent.types import TIMED_MODALITIES

    table = Table(title=title, show_lines=False)
    for col in ("#", "score", "modality", "where", "text"):
        table.add_column(col, overflow="fold")
    for i, hit in enumerate(hits, 1):
        text = hit.text
        if hit.modality in TIMED_MODALITIES and hit.t_start is not None:
            text = _timed_text(hit)
        snippet = " ".join(text.split())[:160]
        doc = hit.extra.get("doc") or {}
        where = escape(hit.locator())
        if doc.get("title"):
            where += f"\n[dim]{escape(doc['title'])}[/dim]"
        kinds = "+".join(hit.extra.get("modalities") or [hit.modality])
        table.add_row(str(i), f"{hit.score:.3f}", kinds, where, escape(snippet))
    out.print(table)


def _timed_text(hit: Hit) -> str:
    """What matched in a video point: its words, or the keyframe's OCR text (title dropped)."""
    from vistarag.agent.imaging import title_words

    title = title_words(Path(hit.source))
    lines = [ln for ln in hit.text.splitlines() if ln.strip() and ln.strip() != title]
    if hit.modality == "keyframe":
        return "OCR: " + " ".join(lines) if lines else "(no text in frame)"
    return " ".join(lines)


@app.command(cls=Command)
def search(
    query: Annotated[str, typer.Argument(metavar="QUERY", help="What to look for.")] = "",
    image: Annotated[
        list[Path] | None,
        typer.Option("--image", metavar="PATH", help="Query image (repeat for several)."),
    ] = None,
    k: Annotated[int, typer.Option("-k", "--top-k", metavar="N", help="Number of hits.")] = 8,
    modality: Annotated[
        list[str] | None,
        typer.Option(
            "--modality",
            metavar="KIND",
            help="text, image, page, keyframe, transcript or clip; a comma list or repeated.",
        ),
    ] = None,
    batch: Annotated[
        Path | None,
        typer.Option(
            "--batch", metavar="FILE", help='JSONL: {"id", "query", "image"?} per line.'
        ),
    ] = None,
    doc: Annotated[list[str] | None, typer.Option(
        "--doc", metavar="DOC",
            help="Only this document: doc_id, file name or part of its title (repeatable).",
    )] = None,
    where: Annotated[list[str] | None, typer.Option(
        "--where", metavar="KEY=VALUE",
            help="Only documents with KEY=VALUE: year, period, form, company.",
    )] = None,
    kb: KbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search a knowledge base by text, by image, or both."""
    engine = _engine(kb)
    modality = _modalities(modality)
    try:
        if batch is None and not query and not image:
            _fail(VistaRAGError("give a query text, --image PATH, or --batch FILE.jsonl"))
        _require_points(engine)  # a missing base or a locked index fails before any model loads
        if query or batch is not None:
            engine.models.load_text_encoder_in_background()  # while the catalog is read
        doc_ids = _scoped_docs(engine, doc or [], where or [])
        if batch is not None:
            _search_batch(engine, batch, k, modality, as_json)
            _show_notices(engine)
            return
        hits = engine.find(
            query, [str(p) for p in image or []], k=k, modality=modality, doc_ids=doc_ids
        )
    except VistaRAGError as exc:
        engine.models.wait_for_loads()  # never exit while a model loads on a thread
        _fail(exc)
    _show_notices(engine)
    if as_json:
        print(json.dumps([h.to_public() for h in hits], ensure_ascii=False))
    elif not hits:
        out.print(f"No results in knowledge base {engine.settings.kb!r}.")
    else:
        _print_hits(hits, f"{query or 'image query'}  ({engine.settings.kb})")


def _scoped_docs(engine: Engine, doc: list[str], where: list[str]) -> list[str] | None:
    """Doc ids for ``--doc`` / ``--where`` (None: no scope); none matching is an error."""
    if not doc and not where:
        return None
    from vistarag.agent.docmeta import catalog, resolve_where

    for clause in where:
        if "=" not in clause:
            raise VistaRAGError(f"--where {clause!r}: write KEY=VALUE, e.g. --where year=2019")
    ids = resolve_where(catalog(engine.kb(), engine.settings.owner), where, doc)
    if not ids:
        raise VistaRAGError(
            "no document matches " + " ".join([*(f"--doc {d}" for d in doc),
                                               *(f"--where {w}" for w in where)])
        )
    return ids


def _search_batch(
    engine: Engine, batch: Path, k: int, modality: list[str] | None, as_json: bool
) -> None:
    """One query per JSONL line; a bad line is reported and the batch goes on. Ends with the
    count and the time a query took (on stderr)."""
    if not batch.is_file():
        raise VistaRAGError(f"{batch}: batch file not found")
    started, done = time.perf_counter(), 0
    for line_no, line in enumerate(batch.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        qid = line_no
        try:
            item = json.loads(line)
            qid = item.get("id", line_no)
            images = [str(item["image"])] if item.get("image") else []
            hits = engine.find(item.get("query", ""), images, k=k, modality=modality)
        except (ValueError, KeyError, AttributeError, VistaRAGError) as exc:
            error = f"{batch}:{line_no}: {exc}"
            err.print(f"[red]error[/red] {escape(error)}")
            if as_json:
                print(json.dumps({"id": qid, "error": error}, ensure_ascii=False), flush=True)
            continue
        done += 1
        if as_json:
            record = {"id": qid, "hits": [h.to_public() for h in hits]}
            print(json.dumps(record, ensure_ascii=False), flush=True)
        else:
            _print_hits(hits, str(qid))
    if done:
        seconds = time.perf_counter() - started
        err.print(f"{done} queries in {seconds:.1f} s ({1000 * seconds / done:.0f} ms a query)")


@app.command(cls=Command)
def ask(
    question: Annotated[str, typer.Argument(metavar="QUESTION", help="Your question.")] = "",
    image: Annotated[
        list[Path] | None,
        typer.Option("--image", metavar="PATH", help="Screenshot or image for this turn."),
    ] = None,
    attach: Annotated[
        list[Path] | None,
        typer.Option("--attach", metavar="FILE", help="Document to ingest and ask about."),
    ] = None,
    thread: Annotated[
        str | None,
        typer.Option("--thread", metavar="ID", help="Conversation id; reuse it for follow-ups."),
    ] = None,
    add: Annotated[
        bool,
        typer.Option("--add", help="Also add the --image files to the knowledge base (after "
                     "the answer, which therefore never cites them)."),
    ] = False,
    kb: KbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Ask a question (with screenshots or documents); the answer cites its sources.

    An --image is the question's image: it is read and searched with, and is not added to the
    knowledge base unless --add is given. An --attach document is added first, then searched.
    """
    from vistarag.agent.settings import Settings
    from vistarag.graphs import VistaContext, build_graph, default_checkpointer
    from vistarag.graphs.runner import TurnEvent, run_turn

    if not question and not image:
        _fail(VistaRAGError("give a question, --image PATH, or both"))
    if add and not image:
        _fail(VistaRAGError("--add adds the --image files to the knowledge base: give --image "
                            "PATH (a document given with --attach is added anyway)"))
    settings = Settings()
    engine = _engine(kb)
    if not attach and not image:  # a screenshot alone is something to answer about
        try:
            _require_points(engine)
        except VistaRAGError as exc:
            _fail(exc)
    streamed = False

    def show(event: TurnEvent) -> None:
        nonlocal streamed
        if as_json:
            return
        if event.kind == "token":
            out.print(event.text, end="", markup=False, highlight=False)
            streamed = True
        elif event.kind == "ingest":
            err.print(f"[dim]ingested {escape(event.data.get('path', ''))}: {event.status}[/dim]")

    try:
        graph = build_graph(settings, checkpointer=default_checkpointer(settings), engine=engine)
        result = run_turn(
            graph, question, images=image or [], attachments=attach or [], thread_id=thread,
            context=VistaContext(kb=kb), on_event=show,
        )
    except VistaRAGError as exc:
        _fail(exc)
    thread_id = result.thread_id
    added = _add_images(engine, image or []) if add else []
    _show_notices(engine)
    if as_json:
        payload = result.to_json()
        payload["hits"] = payload["sources"]
        payload["thread"] = thread_id
        payload["added"] = [_added_json(r) for r in added]
        print(json.dumps(payload, ensure_ascii=False, default=str))
        _exit_if_failed(added)
        return
    if streamed:
        out.print()
    for notice in result.notices:
        err.print(f"[yellow]notice:[/yellow] {escape(notice)}")
    citations = result.citations
    if citations:
        table = Table(title="sources", show_lines=False)
        for col in ("#", "modality", "where", "snippet"):
            table.add_column(col, overflow="fold")
        for c in citations:
            snippet = " ".join(c.snippet.split())[:120]
            table.add_row(str(c.n), c.modality, c.locator(), snippet)
        out.print(table)
    for r in added:
        line = f"{Path(r.path).name}: {r.status}" + (f" ({r.message})" if r.message else "")
        err.print(f"added to knowledge base {engine.settings.kb!r}: {escape(line)}")
    err.print(f"[dim]follow up with --thread {thread_id}[/dim]")
    _exit_if_failed(added)


def _add_images(engine: Engine, images: list[Path]) -> list[FileResult]:
    """``ask --add``: the turn's images into the knowledge base, once the answer is given."""
    ingestor = engine.ingestor()
    return [ingestor.ingest_file(path) for path in images]


def _added_json(result: FileResult) -> dict[str, Any]:
    return {"path": result.path, "status": result.status, "doc_id": result.doc_id,
            "points": result.points, "message": result.message}


def _exit_if_failed(results: list[FileResult]) -> None:
    if any(r.status == "error" for r in results):
        raise typer.Exit(1)


@app.command(cls=Command)
def delete(
    document: Annotated[str, typer.Argument(
        metavar="DOCUMENT", help="A document's path (as ingested) or doc_id.")],
    kb: KbOpt = None,
) -> None:
    """Remove one document (all its points and blobs) from a knowledge base."""
    engine = _engine(kb)
    source = str(Path(document).resolve())
    try:
        ingestor = engine.ingestor()
        if os.path.exists(document):  # its keyed id, or the unkeyed one of older bases
            removed = ingestor.delete_source(source)
        else:  # a doc_id, or the path of a file since moved away
            removed = ingestor.delete_document(document) or ingestor.delete_source(source)
    except VistaRAGError as exc:
        _fail(exc)
    if not removed:
        err.print(f"no document {document!r} in knowledge base {engine.settings.kb!r}")
        raise typer.Exit(1)
    err.print(f"removed {plural(removed, 'point')} of {document}")


@app.command(cls=Command)
def status(as_json: JsonOpt = False) -> None:
    """Data dir, knowledge bases, models, and whether the joint image-text model is available.

    Loads no model: it reads the index and the model caches only.
    """
    from vistarag.agent.index import get_backend
    from vistarag.agent.settings import Settings
    from vistarag.agent.status import gather_status

    try:
        settings = Settings()
        info = gather_status(settings, get_backend(settings))
    except VistaRAGError as exc:
        _fail(exc)
    if as_json:
        print(json.dumps(info, ensure_ascii=False))
        return
    out.print(f"[bold]data dir[/bold]   {escape(info['home'])}")
    out.print(f"[bold]index[/bold]      {escape(info['index'])}")
    kbs = info["knowledge_bases"]
    out.print(f"[bold]knowledge bases[/bold] ({len(kbs)})")
    if not kbs:
        out.print("  none yet: `vistarag ingest PATH` creates 'default'")
    for kb in kbs:
        mode = "text-bridge" if kb["text_bridge"] else f"joint: {kb['joint_model']}"
        out.print(f"  {escape(kb['name'])}: {plural(kb['points'], 'point')} ({escape(mode)}); "
                  f"search {escape(kb['search'])}")
    m = info["models"]
    out.print("[bold]models[/bold]")
    out.print(f"  text        {escape(m['text_model'])} on {m['text_backend']}")
    out.print(f"  joint       {escape(m['joint_model'])}: {escape(m['joint_status'])}")
    out.print(f"  reranker    {escape(m['reranker'])}")
    out.print(f"  synthesizer {escape(_synthesizer_line(settings, m['synthesizer']))}")
    mode = "text-bridge mode" if info["text_bridge"] else "joint image-text space available"
    out.print(f"[bold]mode[/bold]       {mode}")


def _synthesizer_line(settings: Settings, configured: str) -> str:
    """``auto: extractive (quotes the sources) until ...`` or ``auto: anthropic:claude-...``."""
    from vistarag.agent.llm import HOW_TO_CONFIGURE, choose_backend

    backend, _ = choose_backend(settings)
    if backend == "extractive":
        if configured == "extractive":
            return "extractive (answers quote the sources; no language model)"
        return (f"{configured}: answers are extractive (they quote the sources) until you "
                f"{HOW_TO_CONFIGURE}")
    model = settings.anthropic_model if backend == "anthropic" else settings.openai_model
    return f"{configured}: {backend}:{model}"


@kb_app.command("list", cls=Command)
def kb_list(as_json: JsonOpt = False) -> None:
    """List knowledge bases."""
    from vistarag.agent.index import list_knowledge_bases

    engine = _engine()
    names = list_knowledge_bases(engine.kb().backend)
    if as_json:
        print(json.dumps(names))
    else:
        for name in names:
            out.print(name)


@kb_app.command("stats", cls=Command)
def kb_stats(
    name: Annotated[str, typer.Argument(metavar="NAME")] = "default", as_json: JsonOpt = False
) -> None:
    """Points, documents and models of a knowledge base."""
    engine = _engine(name)
    try:
        stats = engine.kb().stats()
    except VistaRAGError as exc:
        _fail(exc)
    if as_json:
        print(json.dumps(stats))
        return
    table = Table(title=f"knowledge base {name!r}", show_header=False)
    for key, value in stats.items():
        table.add_row(key, json.dumps(value) if isinstance(value, dict) else str(value))
    out.print(table)


@kb_app.command("delete", cls=Command)
def kb_delete(
    name: Annotated[str, typer.Argument(metavar="NAME")],
    yes: Annotated[bool, typer.Option("--yes", "-y", metavar="", help="Do not ask.")] = False,
) -> None:
    """Delete a knowledge base and the blobs only it used."""
    from vistarag.agent.maintenance import collect_garbage_blobs

    engine = _engine(name)
    if not engine.kb().exists():
        _fail(VistaRAGError(f"no knowledge base named {name!r} (see `vistarag kb list`)"))
    if not yes and sys.stdin.isatty() and not typer.confirm(f"Delete knowledge base {name!r}?"):
        raise typer.Exit(1)
    from vistarag.agent.notices import NoticeBook

    engine.kb().drop()
    freed = collect_garbage_blobs(engine)
    NoticeBook(engine.settings.notices_path).forget(name)
    err.print(f"deleted knowledge base {name!r} ({plural(freed, 'blob')} freed)")


@kb_app.command("migrate", cls=Command)
def kb_migrate() -> None:
    """Move an index built by an older VistaRAG (qdrant-client local mode) to Qdrant Edge.

    Runs by itself on first use too; the old store is kept as it is until you delete it.
    """
    from vistarag.agent.settings import Settings

    settings = Settings()
    if settings.qdrant_url:
        _fail(VistaRAGError("QDRANT_URL is set: a server needs no migration"))
    done = _migrate(settings.qdrant_dir)
    if done is None:
        err.print(f"nothing to migrate in {settings.qdrant_dir}: the index is Qdrant Edge")


@kb_app.command("reindex", cls=Command)
def kb_reindex(name: Annotated[str, typer.Argument(metavar="NAME")] = "default") -> None:
    """Rebuild a knowledge base from its source files with the models configured now.

    The rebuild goes into a new collection; the old one serves until the new one is complete.
    """
    from vistarag.agent.maintenance import reindex

    engine = _engine(name)
    try:
        done = reindex(engine)
    except VistaRAGError as exc:
        _fail(exc)
    _show_notices(engine, name)
    for source in done.missing:
        err.print(f"[yellow]missing[/yellow] {escape(source)}: no longer on disk, left out")
    for result in done.report.errors:
        err.print(f"[red]error[/red] {escape(result.path)}: {escape(result.message)}")
    s = done.report.summary()
    counts = (
        f"{plural(int(s['files']), 'file')} into {plural(int(s['points']), 'point')} "
        f"({plural(int(s['errors']), 'error')})"
    )
    if not done.swapped:
        err.print(
            f"[red]not re-indexed[/red]: {counts}; knowledge base {name!r} still serves its "
            "previous index. Fix or `vistarag delete` the files above, then re-run."
        )
        raise typer.Exit(1)
    try:
        _build_index(engine)
    except VistaRAGError as exc:
        _fail(exc)
    err.print(f"re-indexed {counts}")


ui_app = typer.Typer(cls=Group, help="The chat UI (Chainlit).", invoke_without_command=True)
app.add_typer(ui_app, name="ui")


@ui_app.callback()
def ui(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", metavar="HOST",
        help="Address to listen on (beyond loopback only with users or --insecure-no-login)."
    )] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", metavar="PORT", help="Port to listen on.")] = 8000,
    kb: KbOpt = None,
    insecure_no_login: Annotated[bool, typer.Option("--insecure-no-login",
        help="Listen beyond loopback without login: every client is the local user.")] = False,
) -> None:
    """Open the chat: paste screenshots, drop PDFs and videos, ask; answers cite their sources."""
    if ctx.invoked_subcommand is not None:
        return
    try:
        from vistarag.ui.web.boot import check_exposure, run
        from vistarag.ui.web.settings import UISettings
    except ImportError as exc:
        _fail(VistaRAGError(f"the chat needs the ui extra: pip install 'vistarag[ui]' ({exc})"))
    settings = UISettings()
    try:  # a malformed users config or an unsafe address stops here, before the banner
        warning = check_exposure(host, settings, insecure_no_login)
    except VistaRAGError as exc:
        _fail(exc)
    if warning:
        err.print(f"[bold red]{escape(warning)}[/bold red]")
    err.print(f"VistaRAG chat on http://{host}:{port}  (Ctrl+C stops it)")
    raise typer.Exit(run(host, port, kb, settings, insecure_no_login))


@ui_app.command("add-user", cls=Command)
def ui_add_user(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Login name.")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin",
        help="Read the password from stdin (one line) instead of a prompt.")] = False,
) -> None:
    """Add a chat login (or change its password) in the users file the chat reads (0600)."""
    from vistarag.ui.web.auth import add_user
    from vistarag.ui.web.settings import UISettings

    if password_stdin or not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    path = UISettings().users_path()
    try:
        add_user(path, name, password)
    except VistaRAGError as exc:
        _fail(exc)
    err.print(f"added {name!r} to {path}; restart `vistarag ui` to use it")


@ui_app.command("hash-password", cls=Command)
def ui_hash_password(
    user: Annotated[str, typer.Argument(metavar="USER", help="Login name.")],
    password: Annotated[
        str, typer.Option(metavar="PASSWORD",
            prompt=True, hide_input=True, confirmation_prompt=True,
                          help="Read from a prompt when not given.")
    ],
) -> None:
    """Print a VISTARAG_UI_USERS entry (NAME:PBKDF2 hash) for a login; never store the password."""
    from vistarag.ui.web.auth import hash_password

    print(f"{user}:{hash_password(password)}")


def main() -> None:
    """Console entry point: domain errors become one clear line and exit code 2."""
    try:
        app()
    except VistaRAGError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise SystemExit(2) from None
    finally:
        # The interpreter's last garbage collection walks every object the command made (an
        # embedded index holds thousands): 0.5 s of a 2 s `search`. Frozen objects are left to
        # the process's end; finalizers and atexit handlers run as usual.
        gc.freeze()


if __name__ == "__main__":
    main()
