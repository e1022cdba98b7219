"""The text model's memory in transparent huge pages: what is moved, that its contents never
change, and that the encoder does it once, for bulk work only."""

from __future__ import annotations

import ctypes
import errno
import json
import mmap
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vistarag.agent import hugepages, onnx_text
from vistarag.agent.embeddings import resolve_text_model
from vistarag.agent.engine import Engine
from vistarag.agent.settings import Settings

SPEC = "packaged:all-MiniLM-L6-v2"
MiB = 1 << 20


def supported() -> bool:
    """Linux 6.1+ (``MADV_COLLAPSE``) with transparent huge pages not set to ``never``."""
    try:
        mode = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return False
    release = re.match(r"(\d+)\.(\d+)", platform.release())
    return ("[never]" not in mode and release is not None
            and (int(release[1]), int(release[2])) >= (6, 1))


def check_moved(moved: int, at_least: int, refused: list) -> None:
    """At least ``at_least`` bytes moved, where the system supports it. A kernel that had no
    huge page to give just then (MADV_COLLAPSE: ENOMEM, memory too fragmented) is the host's
    state, not this code's: that skips the test, saying so."""
    if not supported() or moved >= at_least:
        return
    if any(isinstance(r, hugepages.Refusal) and r.errno == errno.ENOMEM for r in refused):
        pytest.skip(f"the kernel had no free huge page: {[str(r) for r in refused]}")
    assert moved >= at_least, [str(r) for r in refused]


def test_only_what_was_mapped_after_the_snapshot_is_new() -> None:
    before = [(0x1000, 0x5000), (0x9000, 0xA000)]
    after = [(0x1000, 0x5000), (0x1000_000, 0x1400_000), (0x8000, 0xB000)]
    assert hugepages.new_parts(before, after) == [
        (0x1000_000, 0x1400_000), (0x8000, 0x9000), (0xA000, 0xB000)]
    assert hugepages.new_parts([], after) == after
    assert hugepages.collapse([(0x1000, 0x2000)]) == 0  # no whole 2 MiB page inside


def test_a_region_is_cut_to_what_is_still_mapped() -> None:
    assert hugepages.mapped_parts([(0, 10), (20, 40)], [(5, 25), (30, 35)]) == [
        (5, 10), (20, 25), (30, 35)]
    assert hugepages.mapped_parts([(0, 10)], [(10, 20)]) == []


def test_memory_mapped_after_a_snapshot_moves_into_huge_pages_unchanged() -> None:
    before = hugepages.anonymous_regions()
    region = mmap.mmap(-1, 16 * MiB, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    pattern = os.urandom(MiB) * 16
    region.write(pattern)
    refused: list[hugepages.Refusal] = []
    moved = hugepages.collapse(hugepages.new_parts(before, hugepages.anonymous_regions()),
                               refused)
    assert region[:] == pattern
    if not supported():
        return  # nothing to check but that the contents stayed
    start = np.frombuffer(region, dtype=np.uint8).ctypes.data
    check_moved(moved, 14 * MiB, refused)  # the 2 MiB pages inside the 16 MiB region
    assert hugepages.huge_bytes(start, start + 16 * MiB) >= 14 * MiB


def test_memory_freed_since_the_snapshot_does_not_stop_the_rest() -> None:
    """A region of the snapshot that was unmapped before the move (the heap trimmed, a buffer
    freed) is left out; the regions after it still move."""
    before = hugepages.anonymous_regions()
    freed = mmap.mmap(-1, 8 * MiB, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    kept = mmap.mmap(-1, 16 * MiB, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    pattern = os.urandom(MiB) * 16
    freed.write(pattern[: 8 * MiB])
    kept.write(pattern)
    regions = hugepages.new_parts(before, hugepages.anonymous_regions())
    freed_start = np.frombuffer(freed, dtype=np.uint8).ctypes.data
    kept_start = np.frombuffer(kept, dtype=np.uint8).ctypes.data
    freed.close()
    # the freed region first, on its own, as a snapshot of the session's memory would list it
    regions = [(freed_start, freed_start + 8 * MiB)] + regions
    refused: list[str] = []
    moved = hugepages.collapse(regions, refused)
    assert kept[:] == pattern
    if not supported():
        return
    check_moved(moved, 14 * MiB, refused)
    assert hugepages.huge_bytes(kept_start, kept_start + 16 * MiB) >= 14 * MiB


class IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def test_a_page_the_kernel_cannot_move_leaves_the_others_moved() -> None:
    """A page held by the kernel (spliced into a pipe) makes MADV_COLLAPSE refuse the whole
    range, although it moved the other pages: those are counted."""
    if not supported():
        return
    region = mmap.mmap(-1, 16 * MiB, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    region.write(os.urandom(16 * MiB))
    start = np.frombuffer(region, dtype=np.uint8).ctypes.data
    held = -(-start // hugepages.HUGE_PAGE) * hugepages.HUGE_PAGE + 3 * 4096
    read_end, write_end = os.pipe()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        assert libc.vmsplice(write_end, ctypes.byref(IoVec(held, 4096)), 1, 0) == 4096
        refused: list[hugepages.Refusal] = []
        moved = hugepages.collapse([(start, start + 16 * MiB)], refused)
    finally:
        os.close(read_end)
        os.close(write_end)
    assert [r.advice for r in refused] == ["MADV_COLLAPSE"]
    whole_pages = (start + 16 * MiB) // hugepages.HUGE_PAGE - -(-start // hugepages.HUGE_PAGE)
    assert moved == (whole_pages - 1) * hugepages.HUGE_PAGE, refused


def test_the_encoder_moves_its_memory_once_for_bulk_work_and_vectors_stay(
    settings: Settings,
) -> None:
    """A query-sized call leaves memory as it is (start-up stays quick); the first bulk call
    moves the session's weights and arena; the vectors are the same bit for bit. How much
    moves is checked in a process of its own, as ``vistarag ingest`` runs (the next test)."""
    Engine(settings).models.text_encoder.encode_document(["export the model if needed"])
    encoder = onnx_text.load(SPEC, resolve_text_model(SPEC), settings.model_cache, int8=True)
    assert encoder is not None
    texts = [f"Note {i}. Revenue from the cloud segment grew {i}% in fiscal 2022 as customers "
             f"moved workloads {'and storage ' * (i % 5)}to the platform." for i in range(40)]
    few = encoder.encode_document(texts[:3])
    assert encoder.huge_page_bytes is None
    bulk = encoder.encode_document(texts)
    assert encoder.huge_page_bytes is not None
    encoder._cache.clear()
    assert np.array_equal(encoder.encode_document(texts), bulk)
    assert np.array_equal(bulk[:3], few)


INGEST_IN_A_FRESH_PROCESS = """
import json, sys
from pathlib import Path
from vistarag.agent.engine import Engine
from vistarag.agent.settings import Settings

engine = Engine(Settings())
ingestor = engine.ingestor()
ingestor.prepare_models(workers=2)
encoder = engine.models.text_encoder
moved = encoder.huge_page_bytes
added = ingestor.ingest_paths([Path(sys.argv[1])]).count("added")
print(json.dumps({"encoder": type(encoder).__name__, "moved": moved, "added": added,
                  "after": encoder.huge_page_bytes,
                  "refused": [list(r) if isinstance(r, tuple) else str(r)
                              for r in encoder.huge_page_refusals]}))
"""


def test_an_ingest_prepares_the_text_model_before_its_first_file(
    settings: Settings, tmp_path: Path,
) -> None:
    """``vistarag ingest`` loads the models and moves the text model's memory before the first
    file (``Ingestor.prepare_models``), not with the lanes waiting in the middle of a file;
    the ingest after it moves nothing again. Run in a process of its own, as the command is:
    in this long test process a new session can land in memory that earlier tests freed, which
    no snapshot sees as new."""
    Engine(settings).models.text_encoder.encode_document(["export the model if needed"])
    note = tmp_path / "note.txt"
    note.write_text("\n\n".join(f"Paragraph {i}: warehouse lease {i} renews in 20{30 + i % 9}."
                                for i in range(60)))
    env = {**os.environ, "VISTARAG_HOME": str(tmp_path / "fresh"),
           "VISTARAG_MODEL_CACHE": str(settings.model_cache), "VISTARAG_JOINT_MODEL": "none",
           "VISTARAG_SYNTHESIZER": "extractive"}
    run = subprocess.run([sys.executable, "-c", INGEST_IN_A_FRESH_PROCESS, str(note)], env=env,
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["encoder"] == "OnnxTextEncoder" and out["added"] == 1
    assert out["moved"] is not None and out["after"] == out["moved"]
    refused = [hugepages.Refusal(*r) if isinstance(r, list) else r for r in out["refused"]]
    check_moved(out["moved"], 8 * MiB, refused)  # the int8 weights alone are about 11 MiB
