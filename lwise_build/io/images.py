"""Canonical images: decode, orient, convert, resize and crop, PNG-encode; ids from content.

Every model-derived column refers to these exact pixels. Inside the code pixels are floats in
[0, 1], shaped (N, C, H, W).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps

from .digests import bytes_digest

if TYPE_CHECKING:
    import torch

#: Larger images are refused as decompression bombs (about 16k x 16k pixels).
MAX_PIXELS = 268_435_456
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


class BadImage(Exception):
    """An input that is not a usable image; the message is the reason shown in the stage report."""


def open_image(data: bytes) -> Image.Image:
    """Decode fully (so truncation is caught here), or raise :class:`BadImage` with the reason."""
    if not data:
        raise BadImage("empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadImage(f"decompression bomb ({exc})") from None
    except Image.UnidentifiedImageError:
        raise BadImage("not an image") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadImage(f"unreadable image ({exc})") from None
    if img.width == 0 or img.height == 0:
        raise BadImage("zero-size image")
    return img


def to_mode(img: Image.Image, grayscale: bool) -> Image.Image:
    """RGB (or L) from any mode: alpha dropped over white would change pixels, so it is dropped."""
    target = "L" if grayscale else "RGB"
    if img.mode == target:
        return img
    if img.mode.startswith(("I", "F")):
        img = deep_to_8bit(img)
    elif img.mode == "P":
        img = img.convert("RGBA")
    elif img.mode == "CMYK" or img.mode.startswith("YCbCr"):
        img = img.convert("RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        img = img.convert("RGB" if img.mode.startswith(("RGB", "P")) else "L")
    return img.convert(target)


def deep_to_8bit(img: Image.Image) -> Image.Image:
    """8-bit L from a deep grayscale image by its declared bit depth ``d``: ``v >> (d - 8)``, the
    same for every image (as Pillow maps 16-bit RGB), never by the image's own range
    (docs/methods.md, "Canonical images")."""
    if img.mode == "F":
        raise BadImage("floating-point pixels (no bit depth to scale them by); save it with 8 or 16 bits")
    depth = declared_depth(img)
    arr = np.asarray(img).astype(np.int64)
    if arr.size and arr.min() < 0:
        raise BadImage(f"negative pixel values in a {depth}-bit image")
    return Image.fromarray(np.clip(arr >> (depth - 8), 0, 255).astype(np.uint8), "L")


def declared_depth(img: Image.Image) -> int:
    """Bits per sample of a deep grayscale image: 16 for ``I;16*`` (16-bit PNG, TIFF) and for
    ``I`` from PNM (Pillow scales its maxval to 16 bits), a TIFF's BitsPerSample, else 32."""
    if img.mode.startswith("I;16"):
        return 16
    if img.format == "TIFF":
        bits = getattr(img, "tag_v2", {}).get(258)
        return max(8, int(bits[0] if isinstance(bits, tuple) else bits or 32))
    return 16 if img.format in ("PPM", "PNG") else 32


def resize_crop(img: Image.Image, size: int) -> Image.Image:
    """Resize the shorter side to ``size`` (bicubic, antialiased) and centre-crop a square."""
    w, h = img.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), Image.Resampling.BICUBIC, reducing_gap=None)
    left, top = (nw - size) // 2, (nh - size) // 2
    return img.crop((left, top, left + size, top + size))


def canonical_png(data: bytes, size: int, grayscale: bool) -> bytes:
    """Decode ``data`` and return the canonical PNG bytes (raises :class:`BadImage`)."""
    img = open_image(data)
    with contextlib.suppress(OSError, ValueError, TypeError, KeyError):  # broken EXIF: ignored
        img = ImageOps.exif_transpose(img)
    img = resize_crop(to_mode(img, grayscale), size)
    return encode_png(np.asarray(img))


def encode_png(arr: np.ndarray) -> bytes:
    """Deterministic PNG bytes of a uint8 (H, W) or (H, W, C) array."""
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def png_to_jpeg(png: bytes, quality: int = 75) -> bytes:
    """The image as the L-WISE reference served its .jpg tasks' stimuli: JPEG at ``quality``
    (torchvision's ``save_image`` to a .jpg path: PIL's defaults, quality 75, 4:2:0 chroma)."""
    img = Image.open(io.BytesIO(png))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=int(quality))
    return buf.getvalue()


def thumbnail(png: bytes, px: int, quality: int = 90) -> tuple[str, bytes]:
    """A stored image for a page, at most ``px`` on its longer side: ``("image/png", png)`` itself
    when it is that small, else a Lanczos-downscaled JPEG (``quality``) with its MIME type."""
    img = Image.open(io.BytesIO(png))
    if max(img.size) <= px:
        return "image/png", png
    scale = px / max(img.size)
    small = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.LANCZOS)
    buf = io.BytesIO()
    small.save(buf, format="JPEG", quality=quality)
    return "image/jpeg", buf.getvalue()


def image_id(png: bytes) -> str:
    """The id of a canonical image: the first 16 hex digits of the SHA-256 of its PNG."""
    return bytes_digest(png)[:16]


def decode_png(png: bytes) -> np.ndarray:
    """PNG bytes -> uint8 array (H, W, C) with C = 1 or 3."""
    arr = np.asarray(Image.open(io.BytesIO(png)))
    return arr[:, :, None] if arr.ndim == 2 else arr


def to_tensor(pngs: Sequence[bytes]) -> torch.Tensor:
    """Decode a batch of canonical PNGs into a float tensor (N, C, H, W) in [0, 1]."""
    import torch

    arr = np.stack([decode_png(p) for p in pngs])
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float().div_(255.0)


def quantize(x: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) floats in [0, 1] -> uint8 (N, H, W, C), rounding to nearest (what is stored)."""
    import torch

    arr = x.detach().clamp(0, 1).mul(255.0).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return arr[..., 0] if arr.shape[-1] == 1 else arr


def to_pngs(x: torch.Tensor) -> list[bytes]:
    """Encode a float batch (N, C, H, W) in [0, 1] as lossless PNGs."""
    return [encode_png(a) for a in quantize(x)]
