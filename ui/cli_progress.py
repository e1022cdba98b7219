"""What ``vistarag ingest``'s progress bar says: what the file being read is at, and the pages
stored across all files with the rate."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from vistarag.agent.types import clock, plural


class PagesDone:
    """Pages stored so far over every file of an ingest (several at once with ``--workers``),
    from the writers' ``stored`` progress and each file's result, and pages per second since
    the ingest started."""

    def __init__(self, started: float | None = None) -> None:
        self.started = time.perf_counter() if started is None else started
        self._by_file: dict[str, int] = {}
        self._lock = threading.Lock()  # the ingest's workers report while results come in

    def update(self, path: Path | str, done: float) -> None:
        """``path`` has ``done`` pages stored (a count that only grows)."""
        with self._lock:
            key = str(path)
            self._by_file[key] = max(self._by_file.get(key, 0), int(done))

    @property
    def done(self) -> int:
        with self._lock:
            return sum(self._by_file.values())

    def rate(self, now: float | None = None) -> float:
        elapsed = (time.perf_counter() if now is None else now) - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def line(self, now: float | None = None) -> str:
        """``297 pages stored, 15.2 pages/s`` (empty before the first page)."""
        done = self.done
        if not done:
            return ""
        return f"{plural(done, 'page')} stored, {self.rate(now):.1f} pages/s"


def reading_line(name: str, stage: str, done: float, total: float | None) -> str | None:
    """What a file is at, from its extractor's progress (``None``: a stage this line does not
    follow, such as ``stored``): ``report.pdf: page 12/30``, ``scan.pdf: OCR of page 3/4``,
    ``talk.mp4: transcribed 01:20 / 04:05``."""
    if stage in ("video", "speech"):
        what = "decoded" if stage == "video" else "transcribed"
        of = f" / {clock(total)}" if total else ""
        return f"{name}: {what} {clock(done)}{of}"
    if stage == "pages" and total:
        return f"{name}: page {int(done)}/{int(total)}"
    if stage == "ocr":  # a scanned page or an image being read: seconds each
        pages = int(total or 0)
        return f"{name}: OCR of page {int(done)}/{pages}" if pages > 1 else f"{name}: OCR"
    return None
