"""The worst-case probes: files that reach the handlers' limits, read back by the reference readers (Pillow, pypdf,
json, csv), and the tables the tuning notebook shows for them."""
from __future__ import annotations

import csv
import io
import json

import pytest
from PIL import Image
from pypdf import PdfReader

from infra.specs import vcpus_for
from workbook import tuning
from workbook.tuning import probes, recommend
from workbook.tuning.runner import InvocationResult

LIMITS = probes.input_limits()


class PeakInvoker:
    """CPU-bound work of 200 ms at one vCPU, whose peak memory is each payload's ``peak``."""

    def __init__(self):
        self.memory = None

    def set_memory(self, memory_mb):
        self.memory = memory_mb

    def invoke(self, payload):
        duration = 200.0 / min(vcpus_for(self.memory), 1.0) * (1 + 0.01 * (hash(str(payload)) % 3))
        return InvocationResult(duration, float(int(duration) + 1), None, payload["peak"], None)

    def cleanup(self):
        pass


@pytest.mark.parametrize("bit_depth, color_type, mode", [(8, 6, "RGBA"), (16, 6, "RGBA"), (8, 2, "RGB"), (16, 0, "I;16"),
                                                          (8, 4, "LA")])
def test_png_probes_decode_to_what_they_say(bit_depth, color_type, mode):
    data = probes.png_bytes(97, 41, bit_depth=bit_depth, color_type=color_type)
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        assert (image.size, image.mode) == ((97, 41), mode)
        assert len(set(image.getdata())) == 1                 # a flat colour


def test_the_max_pixel_side_is_the_largest_square_within_the_limit():
    side = probes.max_pixel_side()
    assert side ** 2 <= LIMITS.IMAGE_MAX_PIXELS < (side + 1) ** 2


def test_the_progressive_jpeg_side_is_the_largest_within_the_decode_limit():
    side = probes.progressive_jpeg_side(4.0)

    def need(s):
        return LIMITS.image_decode_bytes(s, s, 4, scale=LIMITS.jpeg_draft_scale(s, s, (1024, 1024)), progressive_samples=4)
    assert need(side) <= LIMITS.IMAGE_MAX_DECODE_BYTES < need(side + 1)
    data = probes.jpeg_bytes(64, 48, progressive=True)
    with Image.open(io.BytesIO(data)) as image:
        assert image.info.get("progressive") and image.mode == "CMYK" and image.size == (64, 48)


def test_the_pdf_probe_has_its_pages_and_stays_under_its_size():
    data = probes.pdf_bytes(25, 200_000)
    assert 200_000 - 64 * 1024 - 100 <= len(data) <= 200_000
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) == 25 and reader.metadata["/Producer"] == "workbook.tuning.probes"


def test_the_json_and_csv_probes_stay_under_their_limits_and_parse():
    data = probes.json_bytes(200_000)
    assert len(data) <= 200_000 and json.loads(data)[-1] == "\U0001F600" and json.loads(data)[0] == {}
    rows = list(csv.reader(io.StringIO(probes.csv_bytes(300_000, 1000).decode())))
    assert all(len(row) == 999 for row in rows) and len(rows) * 1000 <= 300_000


def test_file_probes_cover_the_issues_list_and_name_their_limits():
    names = {p.name: p for p in probes.file_probes(50 * 1024 * 1024)}
    assert {"png-rgba-max-pixels", "png16-rgba-max-pixels", "jpeg-cmyk-max-pixels", "pdf-max", "json-max",
            "csv-max"} <= set(names)
    assert "IMAGE_MAX_PIXELS" in names["png-rgba-max-pixels"].description
    assert "PDF_MAX_PAGES" in names["pdf-max"].description and "JSON_MAX_BYTES" in names["json-max"].description


def test_the_worst_case_table_marks_the_probe_that_sets_the_floor():
    # GIVEN an adaptive run with two probes, the second the heavier
    run = tuning.adaptive_power_tuning(PeakInvoker(), payload=[
        {"payload": {"peak": 60.0}, "weight": 1},
        {"payload": {"peak": 150.0}, "probe": "a", "description": "first"},
        {"payload": {"peak": 310.0}, "probe": "b", "description": "second"}], max_invocations=40, current_mb=1024, seed=6)
    tuned = {"file-processor": recommend.Tuned("file-processor", run)}
    # WHEN the notebook's tables are built
    table = recommend.worst_case_table(tuned)
    floor = recommend.floor_probes(tuned)["file-processor"]
    # THEN one row per probe at the largest size, the heavier marked, with its peak, and the floor it set
    assert list(table["probe"]) == ["a", "b"] and list(table["sets_floor"]) == [False, True]
    assert list(table["memory_mb"]) == [3008, 3008] and list(table["max_memory_used_mb"]) == [150.0, 310.0]
    assert floor["probe"] == "b" and floor["peak_mb"] == 310.0 and floor["floor_mb"] == 448
    assert "worst-case input b (second)" in floor["floor"]
    assert table["recommended_max_memory_used_mb"].notna().all() == (run.decision.recommended_mb != 3008)


def test_a_sweep_runs_the_probes_first_and_skips_the_sizes_below_their_floor():
    # GIVEN a function whose worst-case probe peaks at 300 MB, swept from 128 MB with its current size at 256 MB
    invoker = PeakInvoker()
    payload = [{"payload": {"peak": 60.0}, "weight": 1}, {"payload": {"peak": 300.0}, "probe": "big", "description": "d"}]
    run = recommend.sweep(invoker, [128, 256, 512, 1024], 3, payload, 256)
    # THEN the probe ran once at the largest size, the floor is its peak + 30%, and only the current size is below it
    assert list(run.probes["memory_mb"]) == [1024] and run.floor.value == 448 and run.floor_probe == "big"
    assert sorted(run.invocations["memory_mb"].unique()) == [256, 512, 1024]
