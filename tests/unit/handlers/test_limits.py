"""The input limits have one home (handlers/common/limits.py): each is the one its handler enforces.

For every limit: input just over it is refused with an error naming the limit, and input at it
is accepted (where building it is cheap; the worst-case probes at the limits are processed in full
by tests/integration/local/test_file_processor_probes.py). The workbook reads the same file.
"""
from __future__ import annotations

import base64
import io
import json
import struct
import zlib
from pathlib import Path

import pytest
from handler_kit import forget_handler_modules, fresh_handler
from PIL import Image

from workbook.tuning import probes


@pytest.fixture
def handler(monkeypatch):
    yield lambda module, **env: fresh_handler(module, monkeypatch, **env)
    forget_handler_modules()


@pytest.fixture
def fp(handler):
    return handler("file_processor")


@pytest.fixture
def limits():
    from common import limits as layer
    return layer


def _write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def _png_header(width: int, height: int, color_type: int = 6, extra: bytes = b"") -> bytes:
    """A PNG whose header says ``width`` x ``height`` (its pixel data is not valid: it must never be decoded)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + extra + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + chunk(b"IEND", b""))


def _jpeg_header(width: int, height: int, *, progressive: bool, mode: str = "CMYK") -> bytes:
    """A small JPEG with its frame header rewritten to ``width`` x ``height`` (never decoded)."""
    buffer = io.BytesIO()
    Image.new(mode, (16, 16)).save(buffer, format="JPEG", progressive=progressive)
    data = bytearray(buffer.getvalue())
    marker = b"\xff\xc2" if progressive else b"\xff\xc0"
    at = data.index(marker) + 5                      # marker, length (2), precision (1), then height, width
    data[at:at + 4] = struct.pack(">HH", height, width)
    return bytes(data)


def test_the_workbook_reads_the_handlers_own_limits_file(limits):
    loaded = probes.input_limits()
    assert Path(loaded.__file__).resolve() == Path(limits.__file__).resolve() == probes.LIMITS_PATH
    assert all(getattr(loaded, n) == getattr(limits, n) for n in limits.__all__ if n.isupper())
    from infra.specs import FUNCTION_KEYS
    assert set(limits.LIMITS) == set(FUNCTION_KEYS)
    for key, entries in limits.LIMITS.items():      # each table entry is the constant it names
        for entry in entries:
            assert entry.value == getattr(limits, entry.name, None) or entry.name in (
                "MAX_OBJECT_BYTES", "JWT_MAX_TOKEN_BYTES"), (key, entry)


def test_the_handlers_constants_are_the_limits(handler, limits):
    assert handler("api_processor").MAX_BODY_BYTES == limits.API_MAX_BODY_BYTES
    assert handler("data_processor").MAX_MESSAGE_BYTES == limits.SQS_MAX_MESSAGE_BYTES
    assert handler("notification_handler").MAX_MESSAGE_BYTES == limits.SQS_MAX_MESSAGE_BYTES
    assert handler("scheduler").MAX_EVENT_BYTES == limits.SCHEDULED_EVENT_MAX_BYTES
    fp = handler("file_processor")
    assert handler("file_processor", MAX_OBJECT_BYTES="").CONFIG.max_object_bytes == limits.MAX_OBJECT_BYTES_DEFAULT
    assert fp.Image.MAX_IMAGE_PIXELS == limits.IMAGE_MAX_PIXELS
    assert handler("auth_handler").CONFIG.jwt_max_token_bytes == limits.JWT_MAX_TOKEN_BYTES_DEFAULT


# --- images ------------------------------------------------------------------------------------

def test_an_image_one_pixel_over_image_max_pixels_is_refused_before_decoding(fp, limits, tmp_path):
    # GIVEN PNG headers of exactly IMAGE_MAX_PIXELS and one pixel more (Pillow itself only warns up to 2x)
    over = _write(tmp_path, "over.png", _png_header(limits.IMAGE_MAX_PIXELS + 1, 1, color_type=0))
    at = _write(tmp_path, "at.png", _png_header(limits.IMAGE_MAX_PIXELS, 1, color_type=0))
    # THEN the one over is refused with the limit's name, from its header (its pixel data is garbage)
    with pytest.raises(fp.PayloadTooLarge, match="IMAGE_MAX_PIXELS") as refused:
        fp.image_outputs(over, ".png", memory_mb=10240)
    assert "50,000,001 pixels" in refused.value.message
    with Image.open(at) as image:                    # AND the one at the limit passes the check
        image._workbook_full_size = image.size
        fp.check_image(image, 10240)


def test_a_jpeg_over_image_max_pixels_is_refused_too(fp, limits, tmp_path):
    side = probes.max_pixel_side() + 1
    path = _write(tmp_path, "big.jpg", _jpeg_header(side, side, progressive=False))
    with pytest.raises(fp.PayloadTooLarge, match="IMAGE_MAX_PIXELS"):
        fp.image_outputs(path, ".jpg", memory_mb=10240)


def test_a_progressive_cmyk_jpeg_over_the_decode_limit_is_refused(fp, limits, tmp_path):
    # GIVEN the largest progressive CMYK JPEG the probes build, and one a pixel wider and taller
    side = probes.progressive_jpeg_side(4.0)
    over = _write(tmp_path, "over.jpg", _jpeg_header(side + 1, side + 1, progressive=True))
    at = _write(tmp_path, "at.jpg", _jpeg_header(side, side, progressive=True))
    # THEN the larger one is refused naming IMAGE_MAX_DECODE_BYTES: its coefficients, not its pixels, are the limit
    assert (side + 1) ** 2 < limits.IMAGE_MAX_PIXELS
    with pytest.raises(fp.PayloadTooLarge, match="IMAGE_MAX_DECODE_BYTES"):
        fp.image_outputs(over, ".jpg", memory_mb=10240)
    with Image.open(at) as image:                    # AND the probe's size passes, as the handler drafts it
        image._workbook_full_size = image.size
        image.draft(None, fp.fit_size(side, side, fp.RESIZED_MAX_PX))
        assert fp.decode_bytes(image) <= limits.IMAGE_MAX_DECODE_BYTES
        fp.check_image(image, 10240)


def test_the_decode_budget_follows_the_configured_memory(fp, limits, tmp_path):
    # GIVEN a maximum-pixel RGBA PNG header, and the function configured at 256 MB, then at 512 MB
    side = probes.max_pixel_side()
    path = _write(tmp_path, "max.png", _png_header(side, side))
    # THEN at 256 MB it is refused before decoding, with the fix; at 512 MB its header passes
    with pytest.raises(fp.PayloadTooLarge, match="raise file-processor's memory_mb") as refused:
        fp.image_outputs(path, ".png", memory_mb=256)
    assert "256 MB" in refused.value.message and "191 MiB" in refused.value.message
    with Image.open(path) as image:
        image._workbook_full_size = image.size
        fp.check_image(image, 512)
    assert limits.image_decode_budget_bytes(limits.IMAGE_RESERVED_MB) == 0
    assert limits.image_decode_budget_bytes(None) == limits.IMAGE_MAX_DECODE_BYTES


def test_the_handler_reads_its_memory_from_lambdas_variable(handler):
    assert handler("file_processor", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="384").MEMORY_MB == 384
    assert handler("file_processor", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="").MEMORY_MB == 0


def test_png_text_chunks_over_png_max_text_bytes_are_refused(fp, limits, tmp_path):
    def text_chunk(n: int) -> bytes:
        body = b"Comment\x00" + b"x" * (limits.PNG_MAX_TEXT_BYTES // 2 + 1)
        return struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    path = _write(tmp_path, "text.png", _png_header(8, 8, extra=text_chunk(0) + text_chunk(1)))
    with pytest.raises(fp.ValidationError, match="image cannot be decoded"):
        fp.image_outputs(path, ".png", memory_mb=10240)


def test_images_are_resized_as_thumbnail_did(fp, tmp_path):
    # GIVEN images of each mode the decoders produce, larger than the resized bound
    for mode, fmt in (("RGBA", "PNG"), ("LA", "PNG"), ("P", "PNG"), ("I;16", "PNG"), ("RGB", "JPEG"), ("CMYK", "JPEG"),
                      ("L", "JPEG")):
        buffer = io.BytesIO()
        Image.radial_gradient("L").resize((3000, 1700)).convert(mode).save(buffer, format=fmt)
        path = _write(tmp_path, f"i.{fmt.lower()}", buffer.getvalue())
        metadata, renditions = fp.image_outputs(path, "." + ("png" if fmt == "PNG" else "jpg"), memory_mb=10240)
        # THEN the renditions have thumbnail()'s sizes, and decode
        reference = Image.new("L", (3000, 1700))
        reference.thumbnail((1024, 1024))
        assert metadata["resized_size"] == f"{reference.width}x{reference.height}", mode
        assert Image.open(io.BytesIO(renditions["resized"])).size == reference.size
        reference.thumbnail((128, 128))
        assert Image.open(io.BytesIO(renditions["thumbnails"])).size == reference.size
        assert (metadata["width"], metadata["height"], metadata["mode"]) == (3000, 1700, mode)


def test_reducing_in_strips_equals_reducing_whole(fp):
    image = Image.radial_gradient("L").resize((1500, 1100)).convert("RGBA")
    image.putalpha(Image.linear_gradient("L").resize((1500, 1100)))
    factor = 3
    whole = image.convert("RGBa").reduce(factor).convert("RGBA")
    assert fp._reduced(image, factor).tobytes() == whole.tobytes()


# --- documents ---------------------------------------------------------------------------------

def test_json_over_json_max_bytes_is_refused_and_at_it_accepted(fp, limits, tmp_path):
    at = _write(tmp_path, "at.json", b"[" + b" " * (limits.JSON_MAX_BYTES - 2) + b"]")
    over = _write(tmp_path, "over.json", b"[" + b" " * (limits.JSON_MAX_BYTES - 1) + b"]")
    assert fp.document_metadata(at, ".json") == {"type": "json", "top_level": "list", "items": 0}
    with pytest.raises(fp.PayloadTooLarge, match="JSON_MAX_BYTES"):
        fp.document_metadata(over, ".json")


def test_a_csv_row_over_csv_max_row_chars_is_refused_and_at_it_accepted(fp, limits, tmp_path):
    n = limits.CSV_MAX_ROW_CHARS
    at = _write(tmp_path, "at.csv", b"a,b\n" + b"," * (n - 1) + b"\n" + b"1,2\n")
    over = _write(tmp_path, "over.csv", b"a,b\n" + b"," * n + b"\n")
    assert fp.document_metadata(at, ".csv")["rows"] == 2
    with pytest.raises(fp.PayloadTooLarge, match="CSV_MAX_ROW_CHARS"):
        fp.document_metadata(over, ".csv")
    # a row spread over many physical lines (quoted newlines) counts all of them
    spread = _write(tmp_path, "spread.csv", b'"\n",' * (n // 4 + 1) + b"\n")
    with pytest.raises(fp.PayloadTooLarge, match="CSV_MAX_ROW_CHARS"):
        fp.document_metadata(spread, ".csv")


def test_a_pdf_over_pdf_max_bytes_is_refused(fp, limits, tmp_path):
    over = _write(tmp_path, "over.pdf", probes.pdf_bytes(1, 0) + b"%" * limits.PDF_MAX_BYTES)
    with pytest.raises(fp.PayloadTooLarge, match="PDF_MAX_BYTES"):
        fp.document_metadata(over, ".pdf")


def test_a_pdf_over_pdf_max_pages_is_refused_even_when_its_count_lies(fp, limits, tmp_path):
    pages = limits.PDF_MAX_PAGES
    at = _write(tmp_path, "at.pdf", probes.pdf_bytes(pages, 0))
    over = probes.pdf_bytes(pages + 1, 0)
    assert fp.document_metadata(at, ".pdf")["pages"] == pages
    with pytest.raises(fp.PayloadTooLarge, match="PDF_MAX_PAGES"):
        fp.document_metadata(_write(tmp_path, "over.pdf", over), ".pdf")
    lying = over.replace(f"/Count {pages + 1}".encode(), b"/Count 1" + b" " * (len(str(pages + 1)) - 1))
    with pytest.raises(fp.PayloadTooLarge, match="PDF_MAX_PAGES"):
        fp.document_metadata(_write(tmp_path, "lying.pdf", lying), ".pdf")


# --- the other handlers --------------------------------------------------------------------------

def test_an_api_body_over_api_max_body_bytes_is_refused(handler, limits):
    api = handler("api_processor")
    body = json.dumps({"name": "x" * (limits.API_MAX_BODY_BYTES - 12)})
    assert len(body) == limits.API_MAX_BODY_BYTES and api.json_body({"body": body})["name"]
    with pytest.raises(api.PayloadTooLarge, match=str(limits.API_MAX_BODY_BYTES)):
        api.json_body({"body": body[:-2] + "x\"}"})
    encoded = base64.b64encode((body[:-2] + "x\"}").encode()).decode()
    with pytest.raises(api.PayloadTooLarge):
        api.json_body({"body": encoded, "isBase64Encoded": True})


@pytest.mark.parametrize("module, parse", [
    ("data_processor", lambda m, body: m.parse_message(body)),
    ("notification_handler", lambda m, body: m.events.decode_json_text(body, "SQS body", m.MAX_MESSAGE_BYTES)),
])
def test_an_sqs_body_over_sqs_max_message_bytes_is_refused(handler, limits, module, parse):
    m = handler(module)
    message = {"kind": "k", "payload": {"pad": ""}}
    message["payload"]["pad"] = "x" * (limits.SQS_MAX_MESSAGE_BYTES - len(json.dumps(message)))
    body = json.dumps(message)
    assert len(body) == limits.SQS_MAX_MESSAGE_BYTES and parse(m, body)
    from common.errors import PayloadTooLarge
    with pytest.raises(PayloadTooLarge, match=str(limits.SQS_MAX_MESSAGE_BYTES)):
        parse(m, body[:-2] + "x\"}}")


def test_a_scheduled_event_over_scheduled_event_max_bytes_is_refused(handler, limits):
    scheduler = handler("scheduler")
    event = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {"pad": "x" * limits.SCHEDULED_EVENT_MAX_BYTES}}
    with pytest.raises(scheduler.PayloadTooLarge, match=str(limits.SCHEDULED_EVENT_MAX_BYTES)):
        scheduler.check_event(event)


def test_a_token_over_jwt_max_token_bytes_is_refused(handler, limits):
    handler("auth_handler")
    from common.tokens import Reason, TokenRejected, bearer_token
    token = "a" * limits.JWT_MAX_TOKEN_BYTES_DEFAULT
    assert bearer_token(f"Bearer {token}", limits.JWT_MAX_TOKEN_BYTES_DEFAULT) == token
    with pytest.raises(TokenRejected) as refused:
        bearer_token(f"Bearer {token}a", limits.JWT_MAX_TOKEN_BYTES_DEFAULT)
    assert refused.value.reason is Reason.OVERSIZED


def test_a_record_gives_its_memory_back(tmp_path):
    # GIVEN a process that reads a PDF whose cross-reference table holds 200,000 entries (about 50 MB in pypdf)
    import os
    import subprocess
    import sys
    path = _write(tmp_path, "xref.pdf", probes.pdf_bytes(10, 4 * 1024 * 1024))
    code = f"""
import sys
sys.path.insert(0, {str(Path(__file__).resolve().parents[3] / "handlers")!r})
import file_processor as fp
def rss(): return [int(l.split()[1]) // 1024 for l in open("/proc/self/status") if l.startswith("VmRSS")][0]
before = rss()
fp.document_metadata({path!r}, ".pdf")
held = rss()
fp.release_memory()
print(before, held, rss())
"""
    env = {**os.environ, "UPLOADS_BUCKET": "u", "PROCESSED_BUCKET": "p", "EVENT_BUS_NAME": "b",
           "AWS_DEFAULT_REGION": "us-east-1"}
    before, held, after = map(int, subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                                  env=env, check=True).stdout.split())
    # THEN what reading it left resident is given back once the record is done
    assert held - before > 20, (before, held, after)
    assert after - before < (held - before) / 3, (before, held, after)
