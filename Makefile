# The two commands of the README, and the habits around them. Each bootstraps .venv when needed and is
# fast when it is up to date.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
KERNEL := $(VENV)/share/jupyter/kernels/python3/kernel.json
ENV    ?= local

.PHONY: run test test-fast lint notebooks bootstrap clean lab lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install only when the project's metadata or its C source (built by the install) changes.
$(STAMP): pyproject.toml setup.py workbook/telemetry/_reportjson.c | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(KERNEL): $(STAMP)
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (workbook)" >/dev/null

bootstrap: $(STAMP) $(KERNEL)

run: bootstrap
	$(BIN)/workbook run --env $(ENV)

# The whole suite, on every core (pytest-xdist).
test: bootstrap
	@scripts/ensure-chromium.sh
	@scripts/ensure-systemd-analyze.sh
	$(BIN)/python -m pytest --durations=15 $(PYTEST_ARGS)

# Without the slow tiers: notebooks, the local environment's integration tests, the real Pulumi CLI.
test-fast: bootstrap
	@scripts/ensure-systemd-analyze.sh
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint: bootstrap
	$(BIN)/ruff check .

# JupyterLab on the venv's kernel with the notebooks folder, on loopback: a free port, a fresh token, the URL
# printed. --allow-root only when running as root (Jupyter refuses root without it). LAB_PORT=N picks the port.
LAB_PORT ?=
lab: bootstrap
	@port="$(LAB_PORT)"; [ -n "$$port" ] || port=$$($(BIN)/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'); \
	token=$$($(BIN)/python -c 'import secrets; print(secrets.token_hex(24))'); \
	root=""; [ "$$(id -u)" = 0 ] && root="--allow-root"; \
	echo "JupyterLab: http://127.0.0.1:$$port/lab?token=$$token   (Ctrl-C stops it)"; \
	exec $(BIN)/jupyter lab --no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port=$$port --ServerApp.port_retries=0 \
		--IdentityProvider.token=$$token --ServerApp.root_dir=notebooks $$root

# Re-pair each notebook with its jupytext source (notebooks/NN-name.py is the one to edit).
notebooks: bootstrap
	$(BIN)/jupytext --sync notebooks/[0-9][0-9]-*.py

# The layer's lock: handlers/requirements.txt resolved with uv for Lambda's platform (CPython 3.12,
# manylinux, binary wheels only), every pin with its hashes. Both architectures must resolve alike.
LOCK_ARGS = handlers/requirements.txt --generate-hashes --python-version 3.12 --only-binary :all: \
	--custom-compile-command "make lock" --quiet
lock: bootstrap
	$(BIN)/uv pip compile $(LOCK_ARGS) --python-platform x86_64-manylinux_2_17 -o handlers/requirements.lock
	$(BIN)/uv pip compile $(LOCK_ARGS) --python-platform aarch64-manylinux_2_17 -o $(VENV)/requirements-arm64.lock
	@cmp -s handlers/requirements.lock $(VENV)/requirements-arm64.lock || \
		{ echo "make lock: arm64 resolves differently from x86_64 (diff handlers/requirements.lock $(VENV)/requirements-arm64.lock)"; exit 1; }
	$(BIN)/uv pip compile workbook/local/sandbox/runtime-requirements.txt --generate-hashes --python-version 3.12 \
		--only-binary :all: --custom-compile-command "make lock" --quiet --python-platform x86_64-manylinux_2_17 \
		-o workbook/local/sandbox/runtime.lock

clean:
	rm -rf $(VENV) outputs/*/
