# The two set-up commands of README.md: `make demo` (the main job) and `make test`.
# Both create or reuse .venv in the repository and install the pinned set first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install browser demo test test-fast lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/overnight demo

# The board's browser test drives Debian's chromium (Playwright's own browser download needs
# a network this machine does not have).
browser:
	command -v chromium >/dev/null 2>&1 || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

test: install browser
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

# The inner loop: unit and integration tests, without the few marked slow (real Metaflow runs).
# `make test` and CI run everything: system tests (Metaflow, Prefect, gunicorn, the browser),
# model targets and the slow ones included.
test-fast: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest tests/unit tests/integration -m "not slow"

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy

clean:
	rm -rf $(VENV) overnight-data
