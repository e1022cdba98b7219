"""The ``vistarag`` command line (typer + rich)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from vistarag.agent.errors import VistaRAGError
from vistarag.agent.types import Hit

if TYPE_CHECKING:  # heavy modules load lazily, so --help stays fast
    from vistarag.agent.engine import Engine
    from vistarag.agent.ingest.pipeline import FileResult

app = typer.Typer(
    help="VistaRAG: chat with your documents, screenshots and images.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
kb_app = typer.Typer(help="Manage knowledge bases.", no_args_is_help=True)
app.add_typer(kb_app, name="kb")
out = Console()
err = Console(stderr=True, soft_wrap=True)  # one line per message, also in logs and CI

KbOpt = Annotated[str | None, typer.Option("--kb", help="Knowledge base name (default: default).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _engine(kb: str | None = None) -> Engine:
    from vistarag.agent.engine import Engine
    from vistarag.agent.settings import Settings

    settings = Settings()
    if kb:
        settings = settings.model_copy(update={"kb": kb})
    return Engine(settings)


def _fail(exc: Exception) -> None:
    err.print(f"[red]error:[/red] {escape(str(exc))}")
    raise typer.Exit(2)


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files and folders (recursive).")],
    kb: KbOpt = None,
    include: Annotated[list[str] | None, typer.Option(
        "--include", help="Only files matching this glob (repeatable); also lets sidecars in.",
    )] = None,
    exclude: Annotated[list[str] | None, typer.Option(
        "--exclude", help="Leave out files matching this glob (repeatable).",
    )] = None,
) -> None:
    """Add PDFs, images, screenshots and text files to a knowledge base."""
    engine = _engine(kb)
    try:
        ingestor = engine.ingestor()
        engine.models.text  # noqa: B018 - load models before the progress bar starts
        engine.models.joint  # noqa: B018
    except VistaRAGError as exc:
        _fail(exc)
    from vistarag.agent.ingest.discover import select

    selection = select(paths, include or (), exclude or ())
    for path, reason in selection.skipped:
        err.print(f"[yellow]skipped[/yellow] {escape(str(path))}: {escape(reason)}")
    files = selection.files
    with Progress(
        TextColumn("[bold]ingest"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("{task.description}"), console=err, transient=False,
    ) as progress:
        task = progress.add_task("", total=len(files))

        def on_file(path: Path) -> None:
            progress.update(task, description=path.name)

        def on_result(result: FileResult) -> None:
            where, message = escape(result.path), escape(result.message)
            if result.status == "error":
                progress.console.print(f"[red]error[/red] {where}: {message}")
            elif result.status == "skipped":
                progress.console.print(f"[yellow]skipped[/yellow] {where}: {message}")
            for warning in result.warnings:
                progress.console.print(f"[yellow]warning[/yellow] {where}: {escape(warning)}")
            progress.advance(task)

        try:
            report = ingestor.ingest_paths(files, on_file=on_file, on_result=on_result)
        except VistaRAGError as exc:
            _fail(exc)
    s = report.summary()
    s["files"] += len(selection.skipped)
    s["skipped"] += len(selection.skipped)
    err.print(
        f"[bold]{s['files']} files[/bold]: {s['added']} added, {s['replaced']} replaced, "
        f"{s['unchanged']} unchanged, {s['skipped']} skipped, "
        f"[{'red' if s['errors'] else 'green'}]{s['errors']} errors[/]; "
        f"{s['points']} points ({s['pages']} pages, {s['images']} images) in {s['seconds']} s "
        f"into knowledge base {engine.settings.kb!r}"
    )
    if report.errors:
        raise typer.Exit(1)


def _print_hits(hits: list[Hit], title: str) -> None:
    table = Table(title=title, show_lines=False)
    for col in ("#", "score", "modality", "where", "text"):
        table.add_column(col, overflow="fold")
    for i, hit in enumerate(hits, 1):
        snippet = " ".join(hit.text.split())[:160]
        doc = hit.extra.get("doc") or {}
        where = f"{hit.locator()}\n[dim]{escape(doc['title'])}[/dim]" if doc.get("title") else (
            hit.locator()
        )
        kinds = "+".join(hit.extra.get("modalities") or [hit.modality])
        table.add_row(str(i), f"{hit.score:.3f}", kinds, where, snippet)
    out.print(table)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")] = "",
    image: Annotated[list[Path] | None, typer.Option("--image", help="Query image(s).")] = None,
    k: Annotated[int, typer.Option("-k", "--top-k", help="Number of hits.")] = 8,
    modality: Annotated[
        list[str] | None, typer.Option("--modality", help="text, image, page or keyframe.")
    ] = None,
    batch: Annotated[
        Path | None, typer.Option("--batch", help='JSONL: {"id", "query", "image"?} per line.')
    ] = None,
    doc: Annotated[list[str] | None, typer.Option(
        "--doc", help="Only this document: doc_id, file name or part of its title (repeatable).",
    )] = None,
    where: Annotated[list[str] | None, typer.Option(
        "--where", help="Only documents with KEY=VALUE: year, period, form, company.",
    )] = None,
    kb: KbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search a knowledge base by text, by image, or both."""
    engine = _engine(kb)
    try:
        doc_ids = _scoped_docs(engine, doc or [], where or [])
        if batch is not None:
            _search_batch(engine, batch, k, modality, as_json)
            return
        if not query and not image:
            _fail(VistaRAGError("give a query text, --image PATH, or --batch FILE.jsonl"))
        images = [engine.load_query_image(p) for p in image or []]
        hits = engine.search(query, images, k=k, modality=modality, doc_ids=doc_ids)
    except VistaRAGError as exc:
        _fail(exc)
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
    ids = resolve_where(catalog(engine.kb()), where, doc)
    if not ids:
        raise VistaRAGError(
            "no document matches " + " ".join([*(f"--doc {d}" for d in doc),
                                               *(f"--where {w}" for w in where)])
        )
    return ids


def _search_batch(
    engine: Engine, batch: Path, k: int, modality: list[str] | None, as_json: bool
) -> None:
    """One query per JSONL line; a bad line is reported and the batch goes on."""
    if not batch.is_file():
        raise VistaRAGError(f"{batch}: batch file not found")
    for line_no, line in enumerate(batch.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        qid = line_no
        try:
            item = json.loads(line)
            qid = item.get("id", line_no)
            images = [engine.load_query_image(item["image"])] if item.get("image") else []
            hits = engine.search(item.get("query", ""), images, k=k, modality=modality)
        except (ValueError, KeyError, AttributeError, VistaRAGError) as exc:
            error = f"{batch}:{line_no}: {exc}"
            err.print(f"[red]error[/red] {escape(error)}")
            if as_json:
                print(json.dumps({"id": qid, "error": error}, ensure_ascii=False), flush=True)
            continue
        if as_json:
            record = {"id": qid, "hits": [h.to_public() for h in hits]}
            print(json.dumps(record, ensure_ascii=False), flush=True)
        else:
            _print_hits(hits, str(qid))


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="Your question.")] = "",
    image: Annotated[
        list[Path] | None, typer.Option("--image", help="Screenshot or image for this turn.")
    ] = None,
    attach: Annotated[
        list[Path] | None, typer.Option("--attach", help="Document to ingest and ask about.")
    ] = None,
    thread: Annotated[
        str | None, typer.Option("--thread", help="Conversation id; reuse it for follow-ups.")
    ] = None,
    kb: KbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Ask a question (with screenshots or documents); the answer cites its sources."""
    from vistarag.agent.settings import Settings
    from vistarag.graphs import VistaContext, build_graph, default_checkpointer
    from vistarag.graphs.runner import TurnEvent, run_turn

    if not question and not image:
        _fail(VistaRAGError("give a question, --image PATH, or both"))
    settings = Settings()
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
        graph = build_graph(settings, checkpointer=default_checkpointer(settings))
        result = run_turn(
            graph, question, images=image or [], attachments=attach or [], thread_id=thread,
            context=VistaContext(kb=kb), on_event=show,
        )
    except VistaRAGError as exc:
        _fail(exc)
    thread_id = result.thread_id
    if as_json:
        payload = result.to_json()
        payload["hits"] = payload["sources"]
        payload["thread"] = thread_id
        print(json.dumps(payload, ensure_ascii=False, default=str))
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
    err.print(f"[dim]thread {thread_id} - follow up with --thread {thread_id}[/dim]")


@app.command()
def delete(
    document: Annotated[str, typer.Argument(help="A document's path (as ingested) or doc_id.")],
    kb: KbOpt = None,
) -> None:
    """Remove one document (all its points and blobs) from a knowledge base."""
    from vistarag.agent.ingest.pipeline import doc_id_for

    engine = _engine(kb)
    doc_id = document if not os.path.exists(document) else doc_id_for(str(Path(document).resolve()))
    removed = engine.ingestor().delete_document(doc_id)
    if not removed:
        err.print(f"no document {document!r} in knowledge base {engine.settings.kb!r}")
        raise typer.Exit(1)
    err.print(f"removed {removed} points of {document}")


@kb_app.command("list")
def kb_list(as_json: JsonOpt = False) -> None:
    """List knowledge bases."""
    from vistarag.agent.index import list_knowledge_bases

    engine = _engine()
    names = list_knowledge_bases(engine.kb().client)
    if as_json:
        print(json.dumps(names))
    else:
        for name in names:
            out.print(name)


@kb_app.command("stats")
def kb_stats(name: Annotated[str, typer.Argument()] = "default", as_json: JsonOpt = False) -> None:
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


@kb_app.command("delete")
def kb_delete(
    name: Annotated[str, typer.Argument()],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete a knowledge base and the blobs only it used."""
    from vistarag.agent.maintenance import collect_garbage_blobs

    engine = _engine(name)
    if not engine.kb().exists():
        _fail(VistaRAGError(f"no knowledge base named {name!r} (see `vistarag kb list`)"))
    if not yes and sys.stdin.isatty() and not typer.confirm(f"Delete knowledge base {name!r}?"):
        raise typer.Exit(1)
    engine.kb().drop()
    freed = collect_garbage_blobs(engine)
    err.print(f"deleted knowledge base {name!r} ({freed} blobs freed)")


@kb_app.command("reindex")
def kb_reindex(name: Annotated[str, typer.Argument()] = "default") -> None:
    """Rebuild a knowledge base from its source files with the models configured now."""
    from vistarag.agent.maintenance import reindex

    engine = _engine(name)
    try:
        report, missing = reindex(engine)
    except VistaRAGError as exc:
        _fail(exc)
    for source in missing:
        err.print(f"[yellow]missing[/yellow] {escape(source)}: no longer on disk, left out")
    s = report.summary()
    err.print(f"re-indexed {s['files']} files into {s['points']} points ({s['errors']} errors)")
    if report.errors:
        raise typer.Exit(1)


def main() -> None:
    """Console entry point: domain errors become one clear line and exit code 2."""
    try:
        app()
    except VistaRAGError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
