"""workbook.record writes what scrapbook reads."""
import math

import nbformat
import numpy as np
import papermill as pm
import scrapbook as sb

from workbook.report import record


def test_clean_makes_json():
    assert record.clean({"a": float("nan"), "b": np.int64(3), "c": (1, np.float32(2.5)), "d": math.inf}) == \
        {"a": None, "b": 3, "c": [1, 2.5], "d": None}


def test_scrapbook_reads_what_glue_writes(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells.append(nbformat.v4.new_code_cell(
        "from workbook.report.record import glue\nimport sys\n"
        "glue('health', [{'function': 'api', 'p99_ms': float('nan')}])\nglue('total', 1.5)\n"
        "assert 'scrapbook' not in sys.modules"))
    source, target = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, str(source))
    pm.execute_notebook(str(source), str(target), kernel_name="python3", progress_bar=False)
    scraps = sb.read_notebook(str(target)).scraps
    assert scraps["health"].data == [{"function": "api", "p99_ms": None}]
    assert scraps["total"].data == 1.5


def test_read_matches_scrapbook(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells.append(nbformat.v4.new_code_cell("import scrapbook as sb\nsb.glue('x', {'a': [1, 2]})"))
    nb.cells.append(nbformat.v4.new_code_cell("from workbook.report.record import glue\nglue('y', 'text')"))
    source, target = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, str(source))
    pm.execute_notebook(str(source), str(target), kernel_name="python3", progress_bar=False)
    expected = {name: scrap.data for name, scrap in sb.read_notebook(str(target)).scraps.items()}
    assert record.read(str(target)) == expected == {"x": {"a": [1, 2]}, "y": "text"}
