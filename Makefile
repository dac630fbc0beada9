# The two set-up commands of the README: `make run` and `make test`.
# Each creates the local virtual environment on first use and installs what it
# needs: `run` only the dashboard (`pip install -e .`), `test` also the test
# extras (pytest, mypy, Ray, ONNX: `.[test]`) and type-checks engine/ before
# the suite. One stamp per extra: each installs once, and `make test` after
# `make run` only adds the extras.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.created
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test install clean

$(VENV_STAMP):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	touch $(VENV_STAMP)

$(RUN_STAMP): pyproject.toml $(VENV_STAMP)
	$(PY) -m pip install --quiet -e .
	touch $(RUN_STAMP)

$(TEST_STAMP): pyproject.toml $(VENV_STAMP)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(TEST_STAMP)

install: $(RUN_STAMP)

# 130: quit or stopped with a checkpoint (resumable), not an error for make.
run: $(RUN_STAMP)
	$(VENV)/bin/nas3d-tui || [ $$? -eq 130 ]

# The type checker first (strict on engine/, configured in pyproject.toml), then the suite.
test: $(TEST_STAMP)
	$(PY) -m mypy
	$(PY) -m pytest

clean:
	rm -rf $(VENV) build *.egg-info
