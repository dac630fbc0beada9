# The two set-up commands of the README: `make run` and `make test`.
# Each creates the local virtual environment on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# 130: quit or stopped with a checkpoint (resumable), not an error for make.
run: $(STAMP)
	$(VENV)/bin/nas3d-tui || [ $$? -eq 130 ]

test: $(STAMP)
	$(PY) -m pytest

clean:
	rm -rf $(VENV) build *.egg-info
