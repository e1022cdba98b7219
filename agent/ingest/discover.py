"""Find ingestible files under the paths a user gives; a file's kind comes from the registry."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

from vistarag.agent.ingest.registry import REGISTRY, _load_builtins


def kind_of(path: Path) -> str | None:
    """'image', 'pdf', 'text', 'video', 'subtitles' or None (unsupported), by extension."""
    _load_builtins()
    suffix = path.suffix.lower()
    for spec in REGISTRY.values():
        if suffix in spec.suffixes:
            return spec.kind
    return None


def is_sidecar(path: Path) -> bool:
    """A subtitle file beside a video of the same stem (``talk.srt`` next to ``talk.mp4``).

    The video's extractor reads it, so it is not ingested on its own when a folder is walked.
    """
    if kind_of(path) != "subtitles":
        return False
    from vistarag.agent.ingest.subtitles import video_for_sidecar

    return video_for_sidecar(path) is not None


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
                if child.is_file() and kind_of(child) is not None and not is_sidecar(child):
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
