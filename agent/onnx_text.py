"""The text model exported once to ONNX (optionally int8) and run with ONNX Runtime.

Documents and queries are both encoded here by default (``Settings.text_backend``). A process
that needs the encoder and finds no up-to-date export loads the sentence-transformers model
once, exports its transformer into the model cache and, for ``onnx-int8``, quantises the
weights (dynamic, per channel). Later processes load the export with onnxruntime and tokenizers
(0.4 s to import, against about 10 s for sentence-transformers, transformers and torch).

Measured on the text the four SEC filings in ../shared/data/filings embed (2,134 chunks,
2 cores, one run after another): sentence-transformers 65.6 s, this fp32 export 28.6 s (the same
vectors, cosine >= 0.9999). The int8 export (``_quantize``) is closer still to the model than
the previous int8 recipe and a third faster than it: ingesting the filings, back to back,
13.3 pages/s against 10.1 (``evals/bench_messy``). int8 runs one text at a time (see
``OnnxTextEncoder``). The first export is made by a child process (``export_in_child``).

sentence-transformers' own ONNX backend would be the first choice, but it needs optimum-onnx,
which pins transformers below 4.58 (this project runs 5.x). Supported here: a local model whose
pipeline is a Transformer, mean or CLS pooling and optionally Normalize, with a
``tokenizer.json`` and no prompts (MiniLM and most sentence-transformers text models); anything
else stays on sentence-transformers.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vistarag.agent import hugepages, onnx_outliers

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)
FORMAT = 2  # bump when the export or its metadata changes
# ONNX Runtime's SkipLayerNormalization CPU kernel (residual Add + LayerNorm in one node) is
# slower here than the Add and LayerNormalization it replaces: the int8 MiniLM ran 15.4 against
# 17.4 ms a 134-token text, one thread, back to back. The vectors stay as close to the fp32
# model (cosine 0.99843 mean on 400 filings texts, fused or not; 0.9998 between the two).
UNFUSED = ["SkipLayerNormFusion"]


@dataclass(frozen=True)
class Pipeline:
    """What the encoder must reproduce of a sentence-transformers model directory."""

    model_dir: Path
    pooling: str  # "mean" or "cls"
    max_seq_length: int
    fingerprint: str


def pipeline_of(model_dir: str | Path) -> Pipeline | None:
    """The model's pipeline if this module can reproduce it, else None (never raises)."""
    root = Path(model_dir)
    try:
        modules = json.loads((root / "modules.json").read_text())
        types = [m["type"].rsplit(".", 1)[-1] for m in modules]
        if types not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
            return None
        if modules[0].get("path", "") not in ("", "."):
            return None
        pooling_cfg = json.loads((root / modules[1]["path"] / "config.json").read_text())
        modes = {k for k, v in pooling_cfg.items() if k.startswith("pooling_mode") and v}
        pooling = {frozenset({"pooling_mode_mean_tokens"}): "mean",
                   frozenset({"pooling_mode_cls_token"}): "cls"}.get(frozenset(modes))
        st_cfg_path = root / "config_sentence_transformers.json"
        st_cfg = json.loads(st_cfg_path.read_text()) if st_cfg_path.exists() else {}
        if pooling is None or any(st_cfg.get("prompts", {}).values()):
            return None
        bert_cfg = json.loads((root / "sentence_bert_config.json").read_text())
        weights = [p for p in root.iterdir() if p.suffix in (".safetensors", ".bin")]
        if not (root / "tokenizer.json").exists() or not weights:
            return None
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None
    max_len = int(bert_cfg.get("max_seq_length") or 512)
    h = hashlib.sha256(f"{FORMAT}|{root.resolve()}|{pooling}|{max_len}|{_recipe()}".encode())
    for name in ("config.json", "tokenizer.json", "modules.json"):
        h.update((root / name).read_bytes())
    for w in sorted(weights):
        st = w.stat()
        h.update(f"{w.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return Pipeline(root, pooling, max_len, h.hexdigest()[:16])


EXPORT_LIBRARIES = ("torch", "transformers", "onnx", "onnxruntime")


@functools.lru_cache(maxsize=1)
def _recipe() -> str:
    """What an export's output depends on besides the model's files: the versions of the
    libraries that trace, export and quantise it, and this module's export and quantisation
    code. Part of the cache key, so an export made by other code or libraries is never reused
    (read from package metadata and source text: nothing heavy is imported)."""
    from importlib import metadata

    versions = []
    for name in EXPORT_LIBRARIES:
        try:
            versions.append(f"{name}={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name}=none")
    try:
        code = (inspect.getsource(_export) + inspect.getsource(_quantize)
                + inspect.getsource(onnx_outliers))
    except (OSError, TypeError):  # no source (a zipped install): the versions still count
        code = ""
    return ";".join(versions) + "|" + hashlib.sha256(code.encode()).hexdigest()[:12]


def _paths(cache: Path, pipe: Pipeline, int8: bool) -> tuple[Path, Path]:
    stem = cache / f"{pipe.model_dir.name}-{pipe.fingerprint}{'-int8' if int8 else ''}"
    return stem.with_suffix(".onnx"), stem.with_suffix(".json")


Target = tuple[Pipeline, Path, Path]  # the pipeline, its export's ONNX and metadata files


def _target(model_dir: str | Path, cache: Path, int8: bool) -> Target | None:
    """What an export of ``model_dir`` into ``cache`` is made of and where it goes; None when
    this module cannot reproduce the model."""
    pipe = pipeline_of(model_dir)
    return None if pipe is None else (pipe, *_paths(cache, pipe, int8))


def _exported(target: Target) -> bool:
    """The export is complete: its metadata is written last."""
    return target[1].exists() and target[2].exists()


def export(
    model: SentenceTransformer, model_dir: str | Path, cache: Path, int8: bool = False
) -> Path | None:
    """Export ``model`` (loaded from ``model_dir``) once, int8-quantised if asked; the ONNX
    file, or None when this model or this install (no ``onnx`` package) cannot be exported.
    Never raises."""
    target = _target(model_dir, cache, int8)
    if target is None or _exported(target):
        return None if target is None else target[1]
    pipe, onnx_path, meta_path = target
    try:
        return _export(model, pipe, onnx_path, meta_path, int8)
    except Exception as exc:  # a speed-up must never fail the caller: it stays on torch
        log.info("text model not exported to ONNX (%s: %s)", exc.__class__.__name__, exc)
        return None


def export_in_child(
    model_dir: str | Path, cache: Path, int8: bool = False, timeout_s: float = 900
) -> Path | None:
    """``export`` in a child process, which loads the model itself: torch, the model and the
    export's working memory (1.2 GB at the peak for MiniLM, against 0.5 GB for the model
    alone) go back to the OS when it ends, and the process that goes on to ingest or serve
    never holds them. The ONNX file, or None when the model cannot be exported or the child
    failed (the caller may still export in-process). Never raises."""
    target = _target(model_dir, cache, int8)
    if target is None or _exported(target):
        return None if target is None else target[1]
    pipe, onnx_path, _ = target
    command = [sys.executable, "-m", "vistarag.agent.onnx_text", str(pipe.model_dir), str(cache),
               *(["--int8"] if int8 else [])]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}  # the model is a local directory
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True,
                              timeout=timeout_s, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        log.info("text model not exported in a child process (%s)", exc)
        return None
    if done.returncode != 0 or not _exported(target):
        log.info("text model not exported in a child process (exit %s): %s",
                 done.returncode, done.stderr[-2000:])
        return None
    return onnx_path


def _quantize(source: str, target: str, feeds: list[dict[str, np.ndarray]]) -> None:
    """Dynamic int8 quantisation of every MatMul's weights, one scale per output channel,
    with each MatMul's outlier input channels on an fp32 path of their own (``onnx_outliers``,
    calibrated on ``feeds``).

    Measured on MiniLM, one thread, back to back: ms a text and cosine to fp32 (mean / 1st
    percentile) on 400 filings texts, and how often the top hit is fp32's (top-1 agreement; and
    the top-5 overlap) over the 363 queries of ``evals/rerank_eval``'s paraphrase and exact
    material (dense ranking, a whole corpus each):

    | recipe | ms | cosine | top-1 / top-5 |
    |---|---|---|---|
    | fp32 | 33.0 | 1 | 1 / 1 |
    | down-projections fp32 (the previous recipe) | 22.8 | 0.9965 / 0.9943 | 0.813 / 0.862 |
    | outliers split at a ratio of 6 | 16.7 | 0.9979 / 0.9967 | 0.906 / 0.922 |
    | ratio 4 | 15.0 | 0.9981 / 0.9969 | 0.895 / 0.922 |
    | ratio 3 (this recipe) | 15.8 | 0.9984 / 0.9975 | 0.923 / 0.928 |
    | every MatMul int8, nothing split | 15.4 | 0.9925 / 0.9875 | - |

    The split recipes are exported with eager attention (``_eager_attention``). Per-tensor
    activation scales are what lost the precision: the first down-projection's input has a
    channel 25x wider than the median one. Moving scale into the weights instead (SmoothQuant)
    lost more (0.988 mean), since the weights' scales are per output channel; 8-bit
    block-wise weights (MatMulNBits, accuracy level 4) were more precise (0.9996) but slower
    here (22.9-27.2 ms); ONNX Runtime's fused attention (Attention, MultiHeadAttention) was
    slower too. On the dev material every split ratio moved one close call (ratio 6: a
    shared-data turn's page fell from rank 1 to 2, scores 5.272 against 5.235; ratio 4: a
    filings question the same), ratio 3 none: the filings' R@1 0.750 and the shared-data
    suite's R@1 1.000 are those of fp32 and of the previous recipe.

    Weights use 7 bits (``reduce_range``): ONNX Runtime's u8 x s8 kernel on a CPU without
    VNNI (AVX2 only) sums pairs of products in 16 bits and saturates with 8-bit weights, so
    the same export gave other vectors there than on a VNNI CPU (cosine 0.992 min, 0.995 mean,
    measured under qemu's Haswell against this machine's AVX-512 VNNI): tests and rankings
    differed by machine. With 7-bit weights nothing saturates: 0.9989 min, 0.9998 mean (what
    is left is float rounding that the activations' quantisation amplifies).
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    split = target + ".split"
    try:
        fp32_nodes = onnx_outliers.split_outliers(Path(source), Path(split), feeds)
        quantize_dynamic(
            split, target, weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
            op_types_to_quantize=["MatMul"], nodes_to_exclude=fp32_nodes,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        Path(split).unlink(missing_ok=True)


def _export(model: Any, pipe: Pipeline, onnx_path: Path, meta_path: Path, int8: bool) -> Path:
    import torch

    transformer = model[0].auto_model
    names = ["input_ids", "attention_mask"]
    if "token_type_ids" in inspect.signature(transformer.forward).parameters:
        names.append("token_type_ids")

    class LastHidden(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.inner(**dict(zip(names, inputs, strict=True))).last_hidden_state

    sample = model.tokenizer(["probe text", "a second probe"], return_tensors="pt", padding=True)
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=onnx_path.parent, suffix=".onnx.tmp")
    os.close(fd)
    try:
        with torch.no_grad(), warnings.catch_warnings(), _eager_attention(transformer):
            warnings.simplefilter("ignore")  # tracer warnings are about other input shapes
            torch.onnx.export(
                LastHidden(transformer).eval(), tuple(sample[n] for n in names), tmp,
                input_names=names, output_names=["last_hidden_state"],
                dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]},
                opset_version=17, dynamo=False,
            )
        if int8:
            quantized = tmp + ".int8"
            try:
                feeds = [{n: model.tokenizer(text, return_tensors="np")[n].astype(np.int64)
                          for n in names} for text in onnx_outliers.CALIBRATION]
                with _quiet_logging():
                    _quantize(tmp, quantized, feeds)
                os.replace(quantized, tmp)
            finally:
                Path(quantized).unlink(missing_ok=True)
        shutil.copyfile(pipe.model_dir / "tokenizer.json", onnx_path.with_suffix(".tokenizer.json"))
        meta = {"format": FORMAT, "inputs": names, "pooling": pipe.pooling,
                "max_seq_length": min(pipe.max_seq_length, int(model.max_seq_length or 512)),
                "dim": int(transformer.config.hidden_size), "source": str(pipe.model_dir),
                "int8": int8}
        os.replace(tmp, onnx_path)
        meta_path.write_text(json.dumps(meta, indent=1))  # written last: the export is complete
    finally:
        Path(tmp).unlink(missing_ok=True)
    return onnx_path


@contextlib.contextmanager
def _eager_attention(transformer: Any) -> Iterator[None]:
    """Export the plain attention graph: transformers' SDPA path adds a NaN guard (IsNaN and
    Where on every attention matrix, 7% of an int8 run) for the same vectors."""
    previous = getattr(transformer.config, "_attn_implementation", None)
    try:
        transformer.set_attn_implementation("eager")
    except (AttributeError, ValueError, TypeError):  # no eager path: exported as it is
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            transformer.set_attn_implementation(previous)


@contextlib.contextmanager
def _quiet_logging() -> Iterator[None]:
    """onnxruntime's quantiser logs a pre-processing advice through the root logger."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


MAX_RUNS = 4  # concurrent runs at most: more only adds memory and contention
CACHE_VECTORS = 8192  # vectors kept by token ids (12 MiB at 384 dimensions)
BULK_TEXTS = 32  # a call that runs this many texts is bulk work (ingest): see ``hugepages``


def cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def run_threads(available: int | None = None) -> tuple[int, int]:
    """(concurrent runs, intra-op threads per run) for ``available`` cores: one thread per run
    up to ``MAX_RUNS`` runs, the rest of the cores shared out as intra-op threads."""
    n = max(1, available or cores())
    runs = min(MAX_RUNS, n)
    return runs, max(1, n // runs)


def session_options(intra_threads: int) -> Any:
    """ONNX Runtime options for the encoder's session: ``intra_threads`` per run, quiet."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    # ORT's worker threads otherwise spin after each run, holding the cores that PDF
    # extraction and a long-lived UI process need between batches and queries.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.intra_op_num_threads = intra_threads
    return options


def open_session(onnx_path: Path, options: Any) -> Any:
    """The export's inference session on the CPU, without the fusions in ``UNFUSED``."""
    import onnxruntime as ort

    return ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"],
                                disabled_optimizers=UNFUSED)


class OnnxTextEncoder:
    """Text queries and documents into the text model's space, without torch."""

    accepts_images = False
    modalities: tuple[str, ...] = ("text",)

    def __init__(self, name: str, onnx_path: Path, meta: dict[str, Any]) -> None:
        from tokenizers import Tokenizer

        self.name = name
        self.dim = int(meta["dim"])
        self._inputs: list[str] = list(meta["inputs"])
        self._pooling: str = meta["pooling"]
        self._tokenizer = Tokenizer.from_file(str(onnx_path.with_suffix(".tokenizer.json")))
        self._max_tokens = int(meta["max_seq_length"])
        # Dynamic int8 quantisation scales activations per input tensor, so a text's vector
        # would depend on the texts batched with it (cosine 0.993 between batchings): int8
        # runs one text at a time, which keeps every vector the same however texts are
        # batched (about 17% slower than batches of 8). Runs go to a small thread pool, so
        # one-at-a-time still uses every core (``run_threads``); the vectors are the same.
        self._one_at_a_time = bool(meta.get("int8"))
        padding = self._tokenizer.padding  # padded by hand below, batch by batch
        self._pad_id = int(padding["pad_id"] if padding else
                           self._tokenizer.token_to_id("[PAD]") or 0)
        self._tokenizer.no_padding()
        # Several runs at once (``InferenceSession.run`` is thread-safe and releases the GIL),
        # each on ``intra`` threads: runs x intra-op threads never exceeds the cores.
        self._runs, intra = run_threads()
        before = hugepages.anonymous_regions()
        self._session = open_session(onnx_path, session_options(intra))
        self._session_memory = hugepages.new_parts(before, hugepages.anonymous_regions())
        self.huge_page_bytes: int | None = None  # set by ``prepare_bulk``
        # why memory stayed in small pages, if it did
        self.huge_page_refusals: list[hugepages.Refusal | str] = []
        self._lock = threading.Lock()  # the tokenizer's settings change per call
        self._pool: ThreadPoolExecutor | None = None
        # Vectors by their (truncated) token ids, most recently used last: a text read again
        # (a certification paragraph in every 10-K, a table header, the same chunk re-ingested
        # under another name) is not run again. The same ids give the same vector however the
        # text was batched, so a cached vector is the one a run would give.
        self._cache: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self.runs = 0  # texts run through the model (cache misses), for tests and benchmarks

    def _encode(
        self, texts: Sequence[str], batch_size: int, max_tokens: int | None = None,
        runs: int | None = None,
    ) -> np.ndarray:
        """Normalised vectors; texts are batched by token count (little padding) and read up
        to ``max_tokens`` tokens (never more than the model's own limit), at most ``runs``
        batches at once (default: as many as the encoder runs, ``run_threads``)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        limit = self._token_limit(max_tokens)
        if self._one_at_a_time:
            batch_size = 1
        with self._lock:
            self._tokenizer.enable_truncation(limit)
            # ``encode_batch_fast`` (tokenizers 0.21+) skips character offsets, which are not
            # used here: the same ids, a fifth less CPU on the filings' texts.
            encode = getattr(self._tokenizer, "encode_batch_fast", self._tokenizer.encode_batch)
            encs = encode([str(t).strip() for t in texts])
        keys = [hashlib.blake2b(np.asarray(e.ids, dtype=np.int64).tobytes(), digest_size=16)
                .digest() for e in encs]
        first: dict[bytes, int] = {}  # each distinct token sequence runs once
        for i, key in enumerate(keys):
            first.setdefault(key, i)
        with self._lock:
            known = {key: self._cache[key] for key in first if key in self._cache}
            for key in known:
                self._cache.move_to_end(key)
        todo = [i for key, i in first.items() if key not in known]
        order = sorted(todo, key=lambda i: -len(encs[i].ids))
        batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
        lanes = min(self._runs, runs or self._runs, len(batches))
        if self.huge_page_bytes is None and len(todo) >= BULK_TEXTS:
            self.prepare_bulk(limit, lanes)
        if lanes > 1:
            # Each lane takes the next batch (longest first) as soon as it is free.
            pending = iter(batches)
            taking = threading.Lock()

            def lane() -> list[tuple[list[int], np.ndarray]]:
                done = []
                while True:
                    with taking:
                        rows = next(pending, None)
                    if rows is None:
                        return done
                    done.append((rows, self._run(encs, rows)))

            for done in self._executor().map(lambda _: lane(), range(lanes)):
                for rows, vecs in done:
                    out[rows] = vecs
        else:
            for rows in batches:
                out[rows] = self._run(encs, rows)
        with self._lock:
            for i in todo:
                self._cache[keys[i]] = out[i].copy()
            while len(self._cache) > CACHE_VECTORS:
                self._cache.popitem(last=False)
            self.runs += len(todo)
        for i, key in enumerate(keys):
            if key in known:
                out[i] = known[key]
            elif first[key] != i:
                out[i] = out[first[key]]
        return out

    def prepare_bulk(self, max_tokens: int | None = None, runs: int | None = None) -> None:
        """Get ready for bulk work (an ingest), once per encoder: the session's weights and the
        working memory of ``runs`` concurrent runs of ``max_tokens`` tokens (the most a text
        gets) move into huge pages where the system allows (``hugepages``; 0.1-0.3 s). Only
        memory the session mapped is moved, not the rest of the process's. ``vistarag ingest``
        calls it while loading models; otherwise the first bulk call (``BULK_TEXTS``) does."""
        tokens = self._token_limit(max_tokens)
        lanes = min(self._runs, runs or self._runs)
        pool = self._executor()
        with self._lock:
            if self.huge_page_bytes is not None:
                return
            self.huge_page_bytes = 0
            try:
                self._tokenizer.enable_truncation(tokens)
                longest = self._tokenizer.encode("x " * tokens)
                started = threading.Barrier(lanes, timeout=30)  # the lanes' threads (and their
                list(pool.map(lambda _: started.wait(), range(lanes)))  # stacks) exist before
                before = hugepages.anonymous_regions()
                list(pool.map(lambda _: self._run([longest], [0]), range(lanes)))
                arena = hugepages.new_parts(before, hugepages.anonymous_regions())
                self.huge_page_bytes = hugepages.collapse(self._session_memory + arena,
                                                          self.huge_page_refusals)
            except Exception as exc:  # only a speed-up: encoding goes on without it
                self.huge_page_refusals.append(f"{type(exc).__name__}: {exc}")
                log.info("text model memory not moved into huge pages (%s)", exc)

    def _token_limit(self, max_tokens: int | None) -> int:
        """Tokens a text is read up to: ``max_tokens``, never more than the model's limit."""
        return min(max_tokens or self._max_tokens, self._max_tokens)

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._runs, thread_name_prefix="onnx-text")
            return self._pool

    def _run(self, encs: Sequence[Any], rows: list[int]) -> np.ndarray:
        """Normalised vectors of the encodings at ``rows``, padded to the longest of them."""
        width = max(len(encs[i].ids) for i in rows)
        feed = {name: np.zeros((len(rows), width), dtype=np.int64) for name in
                ("input_ids", "attention_mask", "token_type_ids")}
        feed["input_ids"].fill(self._pad_id)
        for r, i in enumerate(rows):
            enc = encs[i]
            n = len(enc.ids)
            feed["input_ids"][r, :n] = enc.ids
            feed["attention_mask"][r, :n] = enc.attention_mask
            feed["token_type_ids"][r, :n] = enc.type_ids
        (hidden,) = self._session.run(None, {k: feed[k] for k in self._inputs})
        if self._pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = feed["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.clip(norms, 1e-12, None)

    def encode_query(self, items: Sequence[str], batch_size: int = 32) -> np.ndarray:
        return self._encode(items, batch_size)

    def encode_document(
        self, items: Sequence[str], batch_size: int = 32, max_tokens: int | None = None,
        runs: int | None = None,
    ) -> np.ndarray:
        """``runs``: at most this many texts through the model at once (ingestion's
        ``--workers``); by default as many as the cores allow (``run_threads``)."""
        return self._encode(items, batch_size, max_tokens, runs)


def load(
    name: str, model_dir: str | Path, cache: Path, int8: bool = False
) -> OnnxTextEncoder | None:
    """The exported encoder for ``model_dir`` if an up-to-date export is in ``cache``."""
    pipe = pipeline_of(model_dir)
    if pipe is None:
        return None
    onnx_path, meta_path = _paths(cache, pipe, int8)
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != FORMAT or not onnx_path.exists():
            return None
        return OnnxTextEncoder(name, onnx_path, meta)
    except Exception as exc:  # a damaged export: fall back to sentence-transformers
        log.info("ONNX text encoder not used (%s: %s)", exc.__class__.__name__, exc)
        return None


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m vistarag.agent.onnx_text MODEL_DIR CACHE [--int8]``: what
    ``export_in_child`` runs. Exit status 0 once the export is in ``CACHE``."""
    import argparse

    from vistarag.agent.embeddings import load_text_embedder

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("cache", type=Path)
    parser.add_argument("--int8", action="store_true")
    args = parser.parse_args(argv)
    model = load_text_embedder(str(args.model_dir)).model
    return 0 if export(model, args.model_dir, args.cache, int8=args.int8) else 1


if __name__ == "__main__":
    raise SystemExit(main())
