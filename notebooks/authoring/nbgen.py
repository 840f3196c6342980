"""Write a notebook from a compact cell list (a one-off authoring aid, not part of the repo)."""
import nbformat, sys

PARAMETERS = '''# Parameters (Papermill replaces these; defaults suit an interactive session on --env local)
env = "local"
region = "us-east-1"
since = "1h"                 # time range: 90m, 24h, 7d
since_s = 3600
functions = None             # None: all six; or a list of function keys
run_folder = None            # set by `workbook run`; None in JupyterLab
power_values = [128, 256, 512, 1024, 1769, 3008]
num_invocations = 10
strategy = "cost"            # cost | speed | balanced
balanced_weight = 0.5
discard_top_bottom = 0.2
tune_functions = ["file-processor"]   # power-tuned in 05-tuning (each costs invocations)
apply_patch = False          # write the params patch to params/<env>.yaml
interactive = True           # ipywidgets controls in JupyterLab; reports print the static view'''

def write(path, cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for kind, src in cells:
        if kind == "md":
            nb.cells.append(nbformat.v4.new_markdown_cell(src.strip()))
        elif kind == "params":
            c = nbformat.v4.new_code_cell(PARAMETERS); c.metadata["tags"] = ["parameters"]; nb.cells.append(c)
        else:
            nb.cells.append(nbformat.v4.new_code_cell(src.strip()))
    for i, c in enumerate(nb.cells):
        c["id"] = f"{path.split('/')[-1].split('.')[0]}-{i:02d}"
    nbformat.validate(nb)
    nbformat.write(nb, path)
