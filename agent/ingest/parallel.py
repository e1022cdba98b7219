"""Overlap and concurrency for ingestion: an extractor read ahead in its own thread while the
caller embeds, and files ingested by a few workers at once.

Threads, not processes: the embedded Qdrant store is held by one process, and the heavy stages
(ONNX Runtime's text model and OCR) release the GIL while they run.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from vistarag.agent.onnx_text import cores

T = TypeVar("T")
R = TypeVar("R")
READ_AHEAD = 2  # groups (PDF pages) extracted ahead of the one being embedded: memory bounded
_DONE = object()


def default_workers() -> int:
    """Files ingested at once by default: the cores this process may use."""
    return cores()


def read_ahead(items: Iterable[T], depth: int = READ_AHEAD) -> Iterator[T]:
    """``items`` produced in a background thread, at most ``depth`` ahead of the consumer.

    Exceptions raised while producing are raised here, in order. When the consumer stops early
    (an exception, ``close``), the producer stops at its next item and its iterator is closed in
    its own thread (a PDF extractor closes its document there)."""
    buffer: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        source = iter(items)
        try:
            for item in source:
                if not put(item):
                    break
        except BaseException as exc:  # handed to the consumer, raised there
            put(_Failure(exc))
            return
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()
        put(_DONE)

    worker = threading.Thread(target=produce, name="ingest-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        worker.join()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def map_ordered(fn: Callable[[T], R], items: list[T], workers: int) -> Iterator[R]:
    """``fn`` over ``items`` on ``workers`` threads; results in the order of ``items``, each
    yielded as soon as it and those before it are done."""
    if workers <= 1 or len(items) <= 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(min(workers, len(items)), thread_name_prefix="ingest") as pool:
        yield from pool.map(fn, items)
