# The README's two commands: `make demo` and `make test`. Both set up .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test quick lint doctor

setup:
	bash scripts/setup.sh

# The demo needs no test or deployment tools: its set-up installs the runtime extras only.
demo:
	EXTRAS=all bash scripts/setup.sh
	$(PY) -m month6_system demo

lint: setup
	$(PY) -m ruff check .

test: lint
	$(PY) -m shared.doctor
	$(PY) -m pytest

# Fast subset: skips tests that load the real chat model and slow ones.
quick: setup
	$(PY) -m pytest -m "not model and not slow and not notebook"

doctor: setup
	$(PY) -m shared.doctor
