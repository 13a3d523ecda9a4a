# ferricorn's developer commands. `make run` and `make test` are the README's two commands:
# each builds into its own virtualenv (.venv) and needs only Python 3 and Rust.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.deps-stamp

.PHONY: help dev run test test-rust test-python lint fmt bench clean docs fuzz

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/'

$(STAMP): tests/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "maturin>=1.7,<2" -r tests/requirements.txt
	touch $(STAMP)

dev: $(STAMP)  ## build the extension (debug) into .venv
	VIRTUAL_ENV=$(abspath $(VENV)) $(VENV)/bin/maturin develop --quiet

run: dev  ## build, then serve examples/hello.py on http://127.0.0.1:8000
	$(VENV)/bin/ferricorn --chdir examples hello:app

test: test-rust test-python  ## build and run every test (Rust unit tests, then pytest)

test-rust:
	cargo test --quiet

test-python: dev
	$(PY) -m mypy.stubtest ferricorn._ferricorn
	$(PY) -m pytest tests -q -ra

docs:  ## regenerate docs/settings.md and docs/migration.md from the settings registry
	FERRICORN_WRITE_DOCS=1 cargo test --quiet --lib settings::docs

lint:  ## formatting and clippy, as CI would want them
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

fmt:
	cargo fmt

SECONDS ?= 5
fuzz:  ## build the fuzz targets (stable Rust) and run each for SECONDS (default 5; fuzz/README.md)
	fuzz/run.sh $(SECONDS)

bench:  ## side-by-side benchmark against granian, gunicorn, uvicorn (see bench/README.md)
	$(PYTHON) bench/run.py

clean:
	rm -rf $(VENV) target
