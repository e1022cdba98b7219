"""Load images from the blob store, downscale them and encode them for a model request."""

from __future__ import annotations

import base64
import io
import logging
from dataclasses import dataclass

from PIL import Image

from vistarag.agent.blobs import BlobStore

log = logging.getLogger(__name__)

# PNG keeps screenshots legible; photos that encode large as PNG are sent as JPEG instead.
PNG_MAX_BYTES = 1_000_000
JPEG_QUALITY = 85


@dataclass(frozen=True)
class EncodedImage:
    """A base64 image ready for a content block."""

    media_type: str  # "image/png" | "image/jpeg"
    data: str  # base64, no data-URL prefix
    width: int
    height: int

    @property
    def data_url(self) -> str:
        return f"data:{self.media_type};base64,{self.data}"


def downscale(img: Image.Image, max_side: int) -> Image.Image:
    """A copy no larger than ``max_side`` on its longest side (aspect ratio kept)."""
    out = img.copy()
    if max_side > 0 and max(out.size) > max_side:
        out.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return out


def _flatten(img: Image.Image) -> Image.Image:
    """RGB image, alpha composited on white."""
    if img.mode == "RGB":
        return img
    rgba = img.convert("RGBA")
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def encode_image(img: Image.Image, max_side: int) -> EncodedImage:
    """Downscale and encode as PNG, or JPEG when the PNG would exceed ``PNG_MAX_BYTES``."""
    small = downscale(img, max_side)
    if small.mode not in ("RGB", "RGBA", "L", "LA"):
        small = small.convert("RGBA" if "A" in small.getbands() else "RGB")
    buf = io.BytesIO()
    small.save(buf, format="PNG", optimize=False)
    media_type = "image/png"
    if buf.tell() > PNG_MAX_BYTES:
        buf = io.BytesIO()
        _flatten(small).save(buf, format="JPEG", quality=JPEG_QUALITY)
        media_type = "image/jpeg"
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return EncodedImage(media_type, data, small.width, small.height)


def load_encoded(blobs: BlobStore, ref: str, max_side: int) -> EncodedImage | None:
    """Encode the blob ``ref``; ``None`` (and a warning) when it is missing or unreadable."""
    try:
        img = blobs.open_image(ref)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        log.warning("image blob %s could not be read (%s); leaving it out of the prompt", ref, exc)
        return None
    return encode_image(img, max_side)
