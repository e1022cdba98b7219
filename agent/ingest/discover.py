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
    A symlink found in a folder that points outside the folders given is not followed.
    """
    paths = [Path(p) for p in paths]
    for path, reason in _walk(paths, _roots(paths)):
        if reason is None:
            yield path


def _roots(paths: Iterable[Path]) -> list[Path]:
    """The folders given, resolved: what a symlink found in a walk may point into."""
    return [p.resolve() for p in paths if p.is_dir()]


def _outside(link: Path, roots: list[Path]) -> str | None:
    """Why a symlink found in a folder is not followed, or None when it stays inside."""
    target = link.resolve()
    if any(target.is_relative_to(root) for root in roots):
        return None
    return (
        f"symlink to {target}, outside the folders given: not followed (name the file itself "
        "to ingest it)"
    )


def _walk(paths: Iterable[Path], roots: list[Path]) -> Iterator[tuple[Path, str | None]]:
    """(path, None) for each file to consider, (path, reason) for a symlink left out."""
    for path in paths:
        if not path.is_dir():
            yield path, None  # named directly (a symlink too): the user chose it
            continue
        for child in sorted(path.rglob("*")):
            rel = child.relative_to(path).parts
            if any(part.startswith(".") for part in rel):
                continue
            if child.is_symlink() and (reason := _outside(child, roots)):
                if child.is_file() and kind_of(child) is not None or child.is_dir():
                    yield child, reason
                continue
            if child.is_file() and kind_of(child) is not None and not is_sidecar(child):
                yield child, None


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
    Files named directly are kept unless excluded; a symlink found in a folder that points
    outside the folders given is skipped with the reason.
    """
    out = Selection()
    paths = [Path(p) for p in paths]
    roots = _roots(paths)
    for root in paths:
        is_dir = root.is_dir()
        for path, reason in _walk([root], roots):
            if reason is not None:
                out.skipped.append((path, reason))
                continue
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
