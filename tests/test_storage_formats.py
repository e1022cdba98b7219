"""What ingestion writes to disk: image blobs as JPEG (PNG where there is transparency), and an
embedded index (Qdrant Edge, write-ahead logged) that survives a writer exiting without closing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from PIL import Image

from vistarag.agent.blobs import BlobStore
from vistarag.agent.engine import Engine
from vistarag.agent.qdrant import close_all
from vistarag.agent.settings import Settings


def test_opaque_images_are_jpeg_and_transparent_ones_png(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    page = Image.new("RGB", (1200, 900), "white")
    page.paste(Image.new("RGB", (300, 40), (200, 30, 30)), (100, 100))
    ref = blobs.put_image(page, max_side=768)
    assert ref.endswith(".jpg")
    stored = blobs.open_image(ref)
    assert stored.size == (768, 576)
    assert stored.getpixel((150, 75))[0] > 150  # the red bar survived, where it was
    logo = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    logo.paste(Image.new("RGBA", (32, 32), (0, 0, 255, 255)), (16, 16))
    ref = blobs.put_image(logo)
    assert ref.endswith(".png")
    stored = blobs.open_image(ref)
    assert stored.getpixel((0, 0))[3] == 0 and stored.getpixel((32, 32)) == (0, 0, 255, 255)
    palette = Image.new("P", (32, 32))
    assert blobs.put_image(palette).endswith(".jpg")
    assert blobs.put_image(page, max_side=768) == blobs.put_image(page, max_side=768)


def test_a_writer_that_exits_without_closing_loses_nothing_committed(
    tmp_path: Path,
) -> None:
    doc = tmp_path / "notes.txt"
    doc.write_text("The forklift brake inspection is due every 90 days at the Rotterdam depot.")
    settings = Settings(_env_file=None, home=tmp_path / "home", joint_model="none")
    engine = Engine(settings)
    assert engine.ingestor().ingest_paths([doc]).count("added") == 1
    close_all()
    assert (settings.qdrant_dir / "edge" / "collections").is_dir()
    # A process that ingests a second file, then dies without closing anything.
    second = tmp_path / "boilers.txt"
    second.write_text("Boiler pressure valves are replaced every 18 months in Ghent.")
    script = textwrap.dedent(f"""
        import os
        from pathlib import Path
        from vistarag.agent.engine import Engine
        from vistarag.agent.settings import Settings
        settings = Settings(_env_file=None, home=Path({str(settings.home)!r}), joint_model="none")
        report = Engine(settings).ingestor().ingest_paths([Path({str(second)!r})])
        assert report.count("added") == 1
        os._exit(0)  # no close, no flush: the write-ahead log holds the commits
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)
    engine = Engine(settings)
    found = {Path(h.source).name for h in engine.find("how often is it replaced", k=5)}
    assert found == {"notes.txt", "boilers.txt"}


def test_page_renders_are_made_at_the_stored_size(tmp_path: Path) -> None:
    """A page is rendered no larger than the thumbnail it is stored as, not resized after."""
    from collections import Counter

    import pymupdf

    from vistarag.agent.ingest.pdf import iter_pdf_pages

    pdf = tmp_path / "a4.pdf"
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)  # A4 in points
    page.insert_text((72, 100), "Quarterly revenue rose 12% on strong demand for services. " * 2)
    doc.save(pdf)

    def page_image(max_side: int | None) -> Image.Image:
        groups = iter_pdf_pages(pdf, None, 10, 900, 72, [], Counter(),  # type: ignore[arg-type]
                                max_side=max_side)
        (image,) = [u.image for g in groups for u in g if u.modality == "page"]
        assert image is not None
        return image

    assert page_image(None).size == (595, 842)  # 72 dpi
    small = page_image(300)
    assert max(small.size) in (299, 300) and abs(small.size[0] / small.size[1] - 595 / 842) < 0.01
    assert page_image(2000).size == (595, 842)  # never above render_dpi


def test_text_only_pages_are_rendered_when_first_shown(tmp_path: Path) -> None:
    """Without a joint model a page whose text layer holds it all is not rendered at ingest:
    its image is made the first time it is asked for, and never from a file that changed."""
    import pymupdf

    from vistarag.agent.maintenance import collect_garbage_blobs
    from vistarag.agent.synth.images import load_encoded

    pdf = tmp_path / "memo.pdf"
    doc = pymupdf.open()
    for text in ("The Rotterdam depot inspects forklift brakes every 90 days.",
                 "Boiler valves in Ghent are replaced every 18 months."):
        doc.new_page().insert_textbox(pymupdf.Rect(72, 72, 540, 300), text * 4)
    doc.save(pdf)
    settings = Settings(_env_file=None, home=tmp_path / "home", joint_model="none")
    engine = Engine(settings)
    report = engine.ingestor().ingest_paths([pdf])
    blobs = engine.blobs
    assert not list(blobs.root.glob("*/*.jpg"))  # nothing rendered yet
    assert len(list(blobs.root.glob("*/*.render.json"))) == 2
    hit = engine.find("forklift brakes", k=1)[0]
    assert hit.blob and hit.page == 1 and hit.blob in blobs.all_refs()
    assert collect_garbage_blobs(engine) == 0  # a page still to render is referenced
    image = blobs.open_image(hit.blob)  # rendered now, at the thumbnail size
    assert max(image.size) == settings.thumbnail_px
    assert len(list(blobs.root.glob("*/*.jpg"))) == 1
    other = engine.find("boiler valves", k=1)[0].blob
    assert other and other != hit.blob
    pdf.write_bytes(pdf.read_bytes() + b"% edited\n")  # no longer the file ingested: no image
    assert not blobs.exists(other) and load_encoded(blobs, other, 512) is None
    assert blobs.exists(hit.blob)  # what was rendered stays
    engine.ingestor().delete_document(report.results[0].doc_id)
    assert not [p for p in blobs.root.glob("*/*") if not p.name.startswith(".")]

    eager = Engine(settings.model_copy(update={"render_text_pages_later": False}))
    eager.ingestor().ingest_paths([pdf])  # for files that will not stay: rendered at ingest
    assert len(list(blobs.root.glob("*/*.jpg"))) == 2
    assert not list(blobs.root.glob("*/*.render.json"))
