"""Worst-case probes: for each function, inputs it accepts that reach its limits on the axis that drives memory.

The limits come from the handlers' own ``handlers/common/limits.py`` (loaded by path, as
``workbook.tuning.floors`` loads ``budgets.py``), so a probe is always just inside what the
handler accepts. Power tuning measures each probe once, at the largest memory size first, and
the memory floor is the largest peak among them plus headroom (``workbook.tuning.adaptive``).

The file processor's probes are files, generated deterministically in memory and fast: a
flat-colour PNG of the maximum pixel count compresses to a few hundred kilobytes and is written
row by row (no full-size image is built); JPEGs go through Pillow's encoder.

=========================  ==========================================================  ================
probe                      what                                                        memory axis
=========================  ==========================================================  ================
png-rgba-max-pixels        flat RGBA PNG of ``IMAGE_MAX_PIXELS``                         decoded pixels
png16-rgba-max-pixels      the same in 16 bits a sample                                  decoded pixels
jpeg-cmyk-max-pixels       baseline CMYK JPEG of ``IMAGE_MAX_PIXELS``                    decoded pixels
jpeg-cmyk-progressive      progressive CMYK JPEG at ``IMAGE_MAX_DECODE_BYTES``           coefficients
png-max-object-bytes       random RGB PNG just under ``uploads.max_object_mb``           file size
pdf-max                    ``PDF_MAX_PAGES`` pages, xref just under ``PDF_MAX_BYTES``    pages + xref
json-max                   ``[{},{},...]`` just under ``JSON_MAX_BYTES``, UCS-4 text      parsed objects
csv-max                    rows of ``CSV_MAX_ROW_CHARS`` to ``uploads.max_object_mb``     one row
=========================  ==========================================================  ================
"""
from __future__ import annotations

import io
import math
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from types import ModuleType

import numpy as np
from PIL import Image

from infra.config import REPO_ROOT
from workbook.tuning.floors import load_handler_module

__all__ = ["LIMITS_PATH", "FileProbe", "csv_bytes", "file_probes", "input_limits", "jpeg_bytes", "json_bytes",
           "max_pixel_side", "pdf_bytes", "png_bytes", "progressive_jpeg_side", "random_png"]

#: The handlers' limits module: the one home of their input limits.
LIMITS_PATH = REPO_ROOT / "handlers" / "common" / "limits.py"
#: Kept below a byte limit so the probe is accepted, not rejected as oversized.
_BELOW_LIMIT_BYTES = 64 * 1024
#: The renditions' bound (file_processor.RESIZED_MAX_PX): JPEG's draft scale depends on it.
_RESIZED_MAX_PX = 1024


@cache
def input_limits() -> ModuleType:
    """``handlers/common/limits.py``: the input limits the handlers enforce."""
    return load_handler_module("workbook_handler_limits", LIMITS_PATH)


@dataclass(frozen=True)
class FileProbe:
    """One upload for the file processor: a name, what it is, its file suffix and how to make its bytes."""

    name: str
    description: str
    suffix: str
    build: Callable[[], bytes]


def max_pixel_side() -> int:
    """The side of the largest square image the file processor accepts (``IMAGE_MAX_PIXELS``)."""
    return math.isqrt(input_limits().IMAGE_MAX_PIXELS)


def progressive_jpeg_side(samples: float = 4.0) -> int:
    """The side of the largest square progressive JPEG (``samples`` a pixel: 4 for CMYK) within ``IMAGE_MAX_DECODE_BYTES``."""
    limits = input_limits()
    low, high = 8, max_pixel_side()

    def fits(side: int) -> bool:
        scale = limits.jpeg_draft_scale(side, side, (_RESIZED_MAX_PX, _RESIZED_MAX_PX))
        return limits.image_decode_bytes(side, side, limits.IMAGE_MAX_CHANNELS, scale=scale,
                                         progressive_samples=samples) <= limits.IMAGE_MAX_DECODE_BYTES
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fits(middle) else (low, middle - 1)
    return low


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_bytes(width: int, height: int, *, bit_depth: int = 8, color_type: int = 6) -> bytes:
    """A flat-colour PNG written row by row (8 or 16 bits; colour type 0 grey, 2 RGB, 4 grey+alpha, 6 RGBA)."""
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[color_type]
    sample = [0x40, 0x80, 0xC0, 0xFF][:channels] if channels > 2 else [0x80, 0xFF][:channels]
    pixel = bytes(sample) if bit_depth == 8 else b"".join(struct.pack(">H", v * 257) for v in sample)
    row = b"\x00" + pixel * width                      # filter type None
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def random_png(limit_bytes: int, seed: int = 0) -> bytes:
    """An uncompressed RGB PNG of random pixels just under ``limit_bytes`` (the largest object in bytes).

    Written directly (one stored-zlib IDAT): Pillow's encoder takes seconds on 50 MB.
    """
    side = int(math.sqrt(max(limit_bytes - _BELOW_LIMIT_BYTES, 3 * 64 * 64) / 3))
    rows = np.random.default_rng(seed).integers(0, 256, size=(side, 1 + 3 * side), dtype=np.uint8)
    rows[:, 0] = 0
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 0))
            + _chunk(b"IEND", b""))


def jpeg_bytes(width: int, height: int, *, mode: str = "CMYK", progressive: bool = False) -> bytes:
    """A flat-colour JPEG (Pillow's encoder; the image is freed before returning)."""
    image = Image.new(mode, (width, height), (40, 80, 120, 160)[:len(mode)] if len(mode) > 1 else 128)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85, progressive=progressive)
    image.close()
    return buffer.getvalue()


def pdf_bytes(pages: int, total_bytes: int) -> bytes:
    """A PDF of ``pages`` blank pages, its cross-reference table padded to just under ``total_bytes``.

    pypdf reads the whole cross-reference table when it opens a file (a Python dict entry for each
    20-byte line), so a table filling the file is what costs it most memory a byte; the extra entries
    all point at the catalog.
    """
    def build(extra: int) -> bytes:
        kids = " ".join(f"{3 + i} 0 R" for i in range(pages))
        objects = [b"<< /Type /Catalog /Pages 2 0 R >>", f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode()]
        objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>"] * pages
        objects.append(b"<< /Title (worst-case probe) /Producer (workbook.tuning.probes) >>")
        out, offsets = io.BytesIO(), []
        out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
        for number, body in enumerate(objects, start=1):
            offsets.append(out.tell())
            out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
        start, size = out.tell(), len(objects) + 1 + extra
        out.write(f"xref\n0 {size}\n0000000000 65535 f \n".encode())
        out.write(b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets))
        out.write(f"{offsets[0]:010d} 00000 n \n".encode() * extra)
        out.write(f"trailer\n<< /Size {size} /Root 1 0 R /Info {len(objects)} 0 R >>\n"
                  f"startxref\n{start}\n%%EOF\n".encode())
        return out.getvalue()
    unpadded = len(build(0))
    return build(max((total_bytes - _BELOW_LIMIT_BYTES - unpadded) // 20, 0))


def json_bytes(total_bytes: int) -> bytes:
    """``[{},{},...,"😀"]`` just under ``total_bytes``: the most Python objects a byte, and one astral character,
    so the decoded text takes 4 bytes a character."""
    tail = '"\U0001F600"]'.encode()
    count = (total_bytes - _BELOW_LIMIT_BYTES - 1 - len(tail)) // 3
    return b"[" + b"{}," * count + tail


def csv_bytes(total_bytes: int, row_chars: int) -> bytes:
    """Rows of empty fields (commas), each just under ``row_chars``, to just under ``total_bytes``."""
    row = b"," * (row_chars - 2) + b"\n"
    return row * max((total_bytes - _BELOW_LIMIT_BYTES) // len(row), 2)


def file_probes(max_object_bytes: int) -> list[FileProbe]:
    """The file processor's worst-case uploads for an object limit of ``max_object_bytes`` (params uploads.max_object_mb)."""
    limits = input_limits()
    side = max_pixel_side()
    progressive = progressive_jpeg_side(4.0)
    pdf_limit = min(limits.PDF_MAX_BYTES, max_object_bytes)
    json_limit = min(limits.JSON_MAX_BYTES, max_object_bytes)
    mib = limits.MiB
    return [
        FileProbe("png-rgba-max-pixels", f"{side:,} x {side:,} RGBA PNG, 8-bit, flat colour (IMAGE_MAX_PIXELS "
                  f"{limits.IMAGE_MAX_PIXELS:,})", ".png", lambda: png_bytes(side, side)),
        FileProbe("png16-rgba-max-pixels", f"{side:,} x {side:,} RGBA PNG, 16-bit, flat colour (IMAGE_MAX_PIXELS)",
                  ".png", lambda: png_bytes(side, side, bit_depth=16)),
        FileProbe("jpeg-cmyk-max-pixels", f"{side:,} x {side:,} CMYK JPEG, baseline (IMAGE_MAX_PIXELS)", ".jpg",
                  lambda: jpeg_bytes(side, side)),
        FileProbe("jpeg-cmyk-progressive", f"{progressive:,} x {progressive:,} CMYK JPEG, progressive (its coefficients "
                  f"reach IMAGE_MAX_DECODE_BYTES {limits.IMAGE_MAX_DECODE_BYTES / mib:,.0f} MiB)", ".jpg",
                  lambda: jpeg_bytes(progressive, progressive, progressive=True)),
        FileProbe("png-max-object-bytes", f"random RGB PNG just under the object limit "
                  f"({max_object_bytes / mib:,.0f} MiB, uploads.max_object_mb)", ".png",
                  lambda: random_png(max_object_bytes)),
        FileProbe("pdf-max", f"PDF of {limits.PDF_MAX_PAGES:,} pages (PDF_MAX_PAGES), its cross-reference table "
                  f"filling it to just under {pdf_limit / mib:,.0f} MiB (PDF_MAX_BYTES)", ".pdf",
                  lambda: pdf_bytes(limits.PDF_MAX_PAGES, pdf_limit)),
        FileProbe("json-max", f"JSON array of empty objects just under {json_limit / mib:,.0f} MiB (JSON_MAX_BYTES)",
                  ".json", lambda: json_bytes(json_limit)),
        FileProbe("csv-max", f"CSV of {limits.CSV_MAX_ROW_CHARS / mib:,.0f} MiB rows (CSV_MAX_ROW_CHARS) just under "
                  f"{max_object_bytes / mib:,.0f} MiB", ".csv",
                  lambda: csv_bytes(max_object_bytes, limits.CSV_MAX_ROW_CHARS)),
    ]
