#!/usr/bin/env bash
# Installs mfmc-bench and everything it needs into ./.venv (CPU only, offline-safe:
# only the package registries are used). Idempotent: a second run only re-checks.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# (pip's "Location ... is ignored" lines are about this machine's extra indexes: noise.)
pip_install() {
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt "$@" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}
pip_install "setuptools<81" wheel
pip_install -e ".[dev]"
# insightface and deepface each pull an OpenCV distribution into the same cv2/ folder;
# reinstalling the contrib build last makes the final cv2 the superset, whatever the order.
pip_install --force-reinstall --no-deps "opencv-contrib-python-headless==4.13.0.92"
.venv/bin/python -c "import bench, cv2, torch, torchmetrics, deepface, insightface; print('installed: torch', torch.__version__, 'cv2', cv2.__version__)"
