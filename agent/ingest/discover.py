"""Find ingestible files under the paths a user gives."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

from vistarag.agent.ingest.images import IMAGE_SUFFIXES
from vistarag.agent.ingest.textfiles import TEXT_SUFFIXES

PDF_SUFFIXES = {".pdf"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v"}
SUPPORTED = IMAGE_SUFFIXES | PDF_SUFFIXES | TEXT_SUFFIXES


def kind_of(path: Path) -> str | None:
    """'image', 'pdf', 'text', 'video' or None (unsupported), by extension."""
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in PDF_SUFFIXES:
        return "pdf"
    if suffix in TEXT_SUFFIXES:
        return "text"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    return None


def discover(paths: Iterable[Path]) -> Iterator[Path]:
    """Files named directly, and supported files found recursively in folders (hidden skipped).

    Files named directly are always yielded, so an unsupported or missing one gets reported.
    """
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                rel = child.relative_to(path).parts
                if any(part.startswith(".") for part in rel):
                    continue
                if child.is_file() and kind_of(child) is not None:
                    yield child
        else:
            yield path


SIDECAR_SUFFIXES = {".md", ".markdown", ".txt", ".rst"}


@dataclass
class Selection:
    """Files to ingest, and the ones left out with the reason."""

    files: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def _matches(path: Path, root: Path | None, patterns: Sequence[str]) -> str | None:
    rel = path.relative_to(root).as_posix() if root and path.is_relative_to(root) else path.name
    for pattern in patterns:
        if any(fnmatch(name, pattern) for name in (path.name, rel, path.as_posix())):
            return pattern
    return None


def select(
    paths: Iterable[Path], include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> Selection:
    """``discover`` with include / exclude globs and sidecars left out.

    A sidecar is a ``.md`` / ``.txt`` beside a PDF of the same stem (``report.pdf`` +
    ``report.md``, an export of the same document): found in a folder it is skipped unless an
    ``include`` glob matches it. Globs match the file name or the path below the folder given.
    Files named directly are kept unless excluded.
    """
    out = Selection()
    for root in paths:
        root = Path(root)
        is_dir = root.is_dir()
        for path in discover([root]):
            base = root if is_dir else None
            pattern = _matches(path, base, exclude) if exclude else None
            if pattern:
                out.skipped.append((path, f"excluded by --exclude {pattern!r}"))
                continue
            included = _matches(path, base, include) if include else None
            if include and is_dir and not included:
                out.skipped.append((path, "not matched by --include"))
                continue
            if is_dir and not included and path.suffix.lower() in SIDECAR_SUFFIXES:
                twins = (path.with_suffix(".pdf"), path.with_suffix(".PDF"))
                twin = next((t for t in twins if t.is_file()), None)
                if twin is not None:
                    out.skipped.append((
                        path,
                        f"sidecar of {twin.name} (same document); include it with "
                        f"--include '*{path.suffix}'",
                    ))
                    continue
            out.files.append(path)
    return out
