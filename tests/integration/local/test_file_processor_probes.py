"""The file processor at the memory power tuning recommends, on every worst-case probe, in the local sandbox.

The outside check of issue 20: power tuning sets the memory floor from the worst-case probes
(``workbook.tuning.probes``, at the limits of ``handlers/common/limits.py``); then each probe,
uploaded afresh, is invoked at the recommended memory under the sandbox's memory limit (a cgroup
as root, where the kernel's OOM killer ends the environment as on Lambda): no
``Runtime.OutOfMemory``, and each result is checked against what the probe is (the renditions
decoded by Pillow, the metadata against the probe's own dimensions, pages, items and rows).
"""
from __future__ import annotations

import io
import json

import pytest
from local_helpers import local_environment
from PIL import Image

from workbook import aws
from workbook.local.client import invoke_remote
from workbook.tuning import probes, recommend
from workbook.tuning.payloads import worst_case_payloads


@pytest.fixture(scope="module")
def environment(tmp_path_factory):
    with local_environment(tmp_path_factory.mktemp("probes-state")) as (recorded, settings):
        yield recorded, settings


@pytest.fixture(scope="module")
def tuned(environment):
    _, settings = environment
    return recommend.power_tune(settings, "file-processor", [256, 512, 1024], 3)


def expected(name: str, max_object_bytes: int) -> dict:
    """What the file processor must report for probe ``name``, from the probe's own construction."""
    limits = probes.input_limits()
    side, progressive = probes.max_pixel_side(), probes.progressive_jpeg_side(4.0)
    images = {"png-rgba-max-pixels": (side, "PNG", "RGBA"), "png16-rgba-max-pixels": (side, "PNG", "RGBA"),
              "jpeg-cmyk-max-pixels": (side, "JPEG", "CMYK"), "jpeg-cmyk-progressive": (progressive, "JPEG", "CMYK")}
    if name in images:
        size, fmt, mode = images[name]
        return {"type": "image", "width": size, "height": size, "format": fmt, "mode": mode,
                "resized_size": "1024x1024", "thumbnails_size": "128x128"}
    if name == "png-max-object-bytes":
        image_side = Image.open(io.BytesIO(probes.random_png(max_object_bytes)[:64])).width
        return {"type": "image", "width": image_side, "height": image_side, "format": "PNG", "mode": "RGB"}
    if name == "pdf-max":
        return {"type": "pdf", "pages": limits.PDF_MAX_PAGES}
    if name == "json-max":
        data = probes.json_bytes(min(limits.JSON_MAX_BYTES, max_object_bytes))
        return {"type": "json", "top_level": "list", "items": data.count(b"{}") + 1}
    if name == "csv-max":
        data = probes.csv_bytes(max_object_bytes, limits.CSV_MAX_ROW_CHARS)
        return {"type": "csv", "columns": limits.CSV_MAX_ROW_CHARS - 1, "rows": data.count(b"\n") - 1}
    raise AssertionError(f"no expectation for probe {name}")


def test_the_floor_is_the_worst_probes_peak_and_names_it(tuned):
    # GIVEN the file processor power-tuned with its sample upload and its worst-case probes
    run = tuned.run
    first = run.probes[run.probes["memory_mb"] == run.probes["memory_mb"].iloc[0]]
    # THEN every probe was processed at the largest size first, and nothing below the floor was measured
    assert set(first["probe"]) == {p.name for p in probes.file_probes(50 * 1024 * 1024)}
    assert first["error"].isna().all(), first[["probe", "error"]]
    assert int(first["memory_mb"].iloc[0]) == 2048 and run.invocations["memory_mb"].min() >= run.floor.value
    # AND the floor is the largest peak among them + 30%, and its reason names that input
    worst = first.loc[first["max_memory_used_mb"].astype(float).idxmax()]
    assert run.floor_probe == worst["probe"] and f"worst-case input {worst['probe']}" in run.floor.reason
    assert run.floor.value >= float(worst["max_memory_used_mb"]) * 1.3
    assert tuned.decision.recommended_mb >= run.floor.value
    table = recommend.worst_case_table({"file-processor": tuned})
    assert table["sets_floor"].sum() == 1 and table.loc[table["sets_floor"], "probe"].item() == worst["probe"]


@pytest.mark.parametrize("at", ["recommended", "floor"])
def test_every_probe_runs_at_the_recommended_memory_without_running_out_and_correctly(environment, tuned, at):
    # (at the floor too: the smallest size the advice can ever give, and every probe in one warm environment)
    recorded, settings = environment
    memory = tuned.decision.recommended_mb if at == "recommended" else int(tuned.run.floor.value)
    name = settings.function_name("file-processor")
    s3 = aws.client("s3", settings.params.aws_region)
    bucket = _processed_bucket(settings)
    max_object_bytes = settings.params.uploads.max_object_mb * 1024 * 1024
    outcomes = {}
    # WHEN each probe is uploaded afresh and invoked at the recommended memory
    for probe in worst_case_payloads(settings, "file-processor"):
        answer = invoke_remote(recorded, name, probe["payload"], memory_mb=memory)
        headers = {k.lower(): v for k, v in answer["headers"].items()}
        report = json.loads(headers["x-lwb-report"])
        outcomes[probe["probe"]] = report["maxMemoryUsedMB"]
        # THEN it neither ran out of memory nor failed, and was processed, not refused
        assert answer["status"] == 200 and "x-amz-function-error" not in headers, (probe["probe"], answer["payload"][:300])
        assert report["maxMemoryUsedMB"] < memory, (probe["probe"], report)
        result = json.loads(answer["payload"])["results"][0]
        assert result["status"] == "processed", (probe["probe"], result)
        # AND its result is right: the metadata describes the probe, and the renditions decode at their sizes
        assert expected(probe["probe"], max_object_bytes).items() <= result.items(), (probe["probe"], result)
        stored = json.loads(s3.get_object(Bucket=bucket, Key=result["outputs"][-1])["Body"].read())
        assert stored["sha256"] == result["sha256"] and stored["type"] == result["type"]
        if result["type"] == "image":
            for key, size in zip(result["outputs"][:2], (result["resized_size"], result["thumbnails_size"]), strict=True):
                with Image.open(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())) as rendition:
                    rendition.load()
                    assert f"{rendition.width}x{rendition.height}" == size and rendition.format == result["format"]
    print(f"\nat {memory} MB ({at}): " + ", ".join(f"{k} {v} MB" for k, v in outcomes.items()))
    print(tuned.run.probes[["probe", "memory_mb", "max_memory_used_mb", "duration_ms", "error"]].to_string())
    print(tuned.run.floor.describe("MB"))


def _processed_bucket(settings) -> str:
    from workbook.deploy.plan import offline_plan
    return offline_plan(settings.env, settings).outputs["processedBucketName"]


@pytest.mark.parametrize("key", ["api-processor", "data-processor", "notification-handler", "auth-handler"])
def test_the_other_functions_probes_are_accepted_at_their_limits(environment, key):
    # GIVEN each function's worst-case probe (a full batch of maximum messages, the largest body, the largest token)
    recorded, settings = environment
    name = settings.function_name(key)
    for probe in worst_case_payloads(settings, key):
        # WHEN it is invoked at the function's configured memory
        answer = invoke_remote(recorded, name, probe["payload"])
        headers = {k.lower(): v for k, v in answer["headers"].items()}
        report = json.loads(headers["x-lwb-report"])
        print(f"\n{key} {probe['probe']}: {report['maxMemoryUsedMB']} MB of {report['memorySizeMB']} MB, "
              f"{report['durationMs']:.0f} ms")
        # THEN the function took it whole: no error, and the response shows it was processed, not refused
        assert answer["status"] == 200 and "x-amz-function-error" not in headers, (key, answer["payload"][:300])
        assert probe["check"](answer["payload"]) is None, (key, answer["payload"][:300])
