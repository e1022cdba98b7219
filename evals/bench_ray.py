"""Ingest throughput: the local path against Ray Data actors on a local Ray instance.

Run: ``.venv/bin/python -m vistarag.evals.bench_ray [--copies 3] [--cpus 2] [--actors N]``
(the ``ray`` extra). The sample corpus (a PDF, a screenshot, a chart, a markdown file) is written
``--copies`` times into a temporary directory, then ingested into one data dir twice: locally
(``Ingestor.ingest_selection``, models loaded first, ``--workers`` threads) into kb "local",
and with ``ingest_with_ray`` on ``ray.init(num_cpus=--cpus)`` into kb "ray". Each prints files/s
and pages/s; the Ray figure includes starting its actors and loading their models, which a
cluster pays once per ingest. Nothing is written outside the temporary directory.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a benchmark must never wait on a download
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from vistarag.agent.engine import Engine  # noqa: E402
from vistarag.agent.ingest.discover import select  # noqa: E402
from vistarag.agent.ingest.pipeline import IngestReport  # noqa: E402
from vistarag.agent.qdrant import close_all  # noqa: E402
from vistarag.agent.settings import Settings  # noqa: E402
from vistarag.evals.sample_corpus import make_sample_corpus  # noqa: E402


def line(name: str, report: IngestReport) -> str:
    s = report.summary()
    secs = max(report.seconds, 1e-9)
    return (f"{name:<6} {s['files']:>3} files {s['pages']:>3} pages {s['points']:>4} points "
            f"{s['errors']} errors  {report.seconds:7.2f} s  {s['files'] / secs:6.2f} files/s  "
            f"{s['pages'] / secs:6.2f} pages/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=3, help="copies of the sample corpus")
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray instance")
    ap.add_argument("--actors", type=int, default=None, help="Ray actors (default: --cpus)")
    ap.add_argument("--workers", type=int, default=None,
                    help="local path: files and model runs at once (default: the cores)")
    args = ap.parse_args()
    try:
        import ray

        from vistarag.agent.ingest.ray_ingest import RayOptions, ingest_with_ray
    except ImportError:
        raise SystemExit("bench_ray needs the ray extra: pip install 'vistarag[ray]'") from None

    with tempfile.TemporaryDirectory(prefix="vistarag-bench-ray-") as tmp:
        root = Path(tmp)
        for i in range(args.copies):
            make_sample_corpus(root / "corpus" / f"copy{i}")
        settings = Settings(home=root / "home", synthesizer="extractive",
                            checkpointer="memory", _env_file=None)
        engine = Engine(settings)
        engine.ingestor().prepare_models(args.workers)  # load time is not ingest time
        selection = select([root / "corpus"])
        local = engine.ingestor("local").ingest_selection(selection, workers=args.workers)
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
        try:
            options = RayOptions(actors=args.actors or args.cpus)
            by_ray = ingest_with_ray(engine.ingestor("ray"), selection, options)
        finally:
            ray.shutdown()
        print(f"joint model: {engine.models.record()['joint_model']}; "
              f"ray: {args.cpus} CPUs, {args.actors or args.cpus} actors")
        print(line("local", local))
        print(line("ray", by_ray))
        close_all()


if __name__ == "__main__":
    main()
