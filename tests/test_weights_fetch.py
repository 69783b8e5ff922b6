"""`bench weights fetch`: deepface and insightface download their own official weights with
their own downloaders into their usual caches, and the manifest records each file's sha256.
The libraries' hosts are replaced by a local HTTP server on 127.0.0.1 (weights.fetch.mirror)
that serves tiny files at the very URL paths the installed libraries use: no real network."""
from __future__ import annotations

import bz2
import functools
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytest.importorskip("deepface")
pytest.importorskip("insightface")

import bench.weights as weights  # noqa: E402
from bench.weights import official  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("BENCH_SHARED", REPO.parent / "shared")).resolve()

# recognizer -> (deepface's client module for the pytorch backend, its URL attribute, the file deepface loads)
DEEPFACE_FILES = {
    "deepid": ("deepface.models.facial_recognition.pytorch.DeepID", "WEIGHTS_URL", "deepid_weights.pth"),
    "openface": ("deepface.models.facial_recognition.pytorch.OpenFace", "WEIGHTS_URL", "openface_weights.pth"),
    "deepface": ("deepface.models.facial_recognition.pytorch.FbDeepFace", "WEIGHTS_URL",
                 "VGGFace2_DeepFace_weights_val-0.9034.pth"),
    "facenet": ("deepface.models.facial_recognition.pytorch.Facenet", "FACENET128_WEIGHTS", "facenet_weights.pth"),
    "facenet512": ("deepface.models.facial_recognition.pytorch.Facenet", "FACENET512_WEIGHTS", "facenet512_weights.pth"),
    "dlib": ("deepface.models.facial_recognition.dlib.Dlib", "WEIGHT_URL", "dlib_face_recognition_resnet_model_v1.dat"),
    "arcface": ("deepface.models.facial_recognition.pytorch.ArcFace", "WEIGHTS_URL", "arcface_weights.pth"),
}
PACK_FILES = {"w600k_r50.onnx": b"fake w600k_r50", "det_10g.onnx": b"fake det_10g"}


def deepface_url(recognizer: str) -> str:
    """deepface's own primary URL for a recognizer's file (read from the installed deepface)."""
    import importlib

    module, attribute, _ = DEEPFACE_FILES[recognizer]
    urls = getattr(importlib.import_module(module), attribute)
    return urls if isinstance(urls, str) else urls[0]


def buffalo_url() -> str:
    from insightface.utils import storage

    return storage.model_zoo_download_url("buffalo_l.zip")


def content(recognizer: str) -> bytes:
    """The bytes a recognizer's file holds once deepface has it (after its bz2 unpacking)."""
    return f"fake weights of {recognizer}".encode()


class Server:
    """http.server on 127.0.0.1 (a free port) serving `root`; records (method, path) of each request."""

    def __init__(self, root: Path):
        self.root, self.requests = root, []
        outer = self

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, *args):  # quiet; remember instead
                outer.requests.append((self.command, self.path))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def put(self, url: str, data: bytes) -> None:
        """Serves `data` at the path of `url` (a library's own URL)."""
        path = self.root / urlsplit(url).path.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def gets(self, name: str) -> list[str]:
        return [p for m, p in self.requests if m == "GET" and p.endswith(name)]


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path / "www")
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def serve_all(srv: Server, skip: tuple[str, ...] = ()) -> None:
    for recognizer in DEEPFACE_FILES:
        if recognizer in skip:
            continue
        url = deepface_url(recognizer)
        srv.put(url, bz2.compress(content(recognizer)) if url.endswith(".bz2") else content(recognizer))
    pack = io.BytesIO()
    with zipfile.ZipFile(pack, "w") as z:
        for name, data in PACK_FILES.items():
            z.writestr(name, data)
    srv.put(buffalo_url(), pack.getvalue())


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run_cli(tmp_path: Path, srv: Server, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DEEPFACE_HOME": str(tmp_path / "home"), "INSIGHTFACE_HOME": str(tmp_path / "if"),
           "HOME": str(tmp_path / "user"),  # gdown keeps a cookie file under ~/.cache
           "DEEPFACE_BACKEND_ENGINE": "pytorch", "BENCH_SHARED": str(SHARED), "NO_PROXY": "127.0.0.1,localhost"}
    return subprocess.run([sys.executable, "-m", "bench", "weights", "fetch", f"weights.fetch.mirror={srv.url}",
                           *overrides], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_fetch_cli_puts_files_where_the_libraries_look(tmp_path, server, cfg_factory):
    serve_all(server, skip=("deepid",))  # deepid's file is missing: HTTP 404 on both its URLs
    done = run_cli(tmp_path, server)
    output = done.stdout + done.stderr
    assert done.returncode != 0 and "Traceback" not in output
    assert "weights fetch deepid: deepface could not download deepid_weights.pth from" in output
    assert "deepid_weights.pth: HTTP 404" in output
    assert "1 of 8 recognizers' weights could not be fetched (deepid); the others are in place" in output

    weights_dir = tmp_path / "home" / ".deepface" / "weights"
    manifest = json.loads((weights_dir / "bench_manifest.json").read_text())["files"]
    for recognizer, (_, _, file_name) in DEEPFACE_FILES.items():
        target = weights_dir / file_name
        if recognizer == "deepid":
            assert not target.exists() and str(target) not in manifest
            continue
        assert target.read_bytes() == content(recognizer)
        entry = manifest[str(target)]
        assert entry["sha256"] == sha256(content(recognizer)) and entry["size"] == len(content(recognizer))
        assert entry["url"] == official.rehost(deepface_url(recognizer), server.url) and entry["by"] == official.FETCHED_BY
        assert entry["library"].startswith("deepface ") and entry["fetched_at"]
    pack = tmp_path / "if" / "models" / "buffalo_l"
    for name, data in PACK_FILES.items():
        assert (pack / name).read_bytes() == data
        assert manifest[str(pack / name)]["sha256"] == sha256(data)
        assert manifest[str(pack / name)]["url"] == official.rehost(buffalo_url(), server.url)

    # `weights status` shows them present, and the recognizers' configs point at them
    cfg = cfg_factory(f"paths.deepface_home={tmp_path / 'home'}", f"paths.insightface_home={tmp_path / 'if'}")
    rows = {r["name"]: r for r in weights.status_rows(cfg) if r["kind"] == "recognizer"}
    for recognizer in [*DEEPFACE_FILES, "insightface"]:
        row = rows[recognizer]
        if recognizer == "deepid":
            assert row["present"] == "no" and "weights fetch" in row["source"]
        else:
            assert row["present"] == "yes" and "bench weights fetch" in row["source"], row
            assert "sha256 matches the manifest" in row["source"]
    assert rows["facenet512_opencv"]["present"] == "no"  # bench's own home: deepface's file never goes there

    # Once deepid's file is there, a second run fetches it alone: the others are not downloaded again.
    serve_all(server)
    before = len(server.requests)
    done = run_cli(tmp_path, server)
    assert done.returncode == 0, done.stdout + done.stderr
    again = server.requests[before:]
    assert [p for m, p in again if m == "GET"] == [urlsplit(deepface_url("deepid")).path]
    assert (weights_dir / "deepid_weights.pth").read_bytes() == content("deepid")
    assert done.stdout.count("already fetched") == 7


@pytest.fixture
def fetch_cfg(cfg_factory, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "user"))  # gdown keeps a cookie file under ~/.cache
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")

    def make(mirror: str, *recognizers: str):
        return cfg_factory(f"paths.deepface_home={tmp_path / 'home'}", f"paths.insightface_home={tmp_path / 'if'}",
                           f"weights.fetch.mirror={mirror}", f"weights.fetch.recognizers=[{','.join(recognizers)}]")

    return make


def test_a_bad_zip_is_a_clear_error_and_leaves_no_pack(tmp_path, server, fetch_cfg):
    server.put(buffalo_url(), b"<html>not a zip</html>")
    with pytest.raises(official.FetchFailed, match="1 of 1 .*could not be fetched \\(insightface\\);"):
        weights.fetch(fetch_cfg(server.url, "insightface"))
    # insightface would take an empty buffalo_l/ for the pack next time
    assert not (tmp_path / "if" / "models" / "buffalo_l").exists()


def test_no_network_is_one_line_per_model(tmp_path, fetch_cfg, capsys):
    with socket.socket() as s:  # a port nobody listens on: connection refused, as offline
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(official.FetchFailed, match="2 of 2 .* could not be fetched \\(dlib, insightface\\); see"):
        weights.fetch(fetch_cfg(closed, "dlib", "insightface"))
    rows = [line for line in capsys.readouterr().out.splitlines() if "FAILED" in line]
    assert len(rows) == 2 and all("cannot connect to 127.0.0.1" in r and "(no network, or the host is down)" in r
                                  for r in rows)
    assert not (tmp_path / "home" / ".deepface" / "weights" / "dlib_face_recognition_resnet_model_v1.dat").exists()


def test_a_file_already_there_is_kept(tmp_path, server, fetch_cfg, capsys):
    serve_all(server)
    target = tmp_path / "home" / ".deepface" / "weights" / "arcface_weights.pth"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"the user's own file")
    weights.fetch(fetch_cfg(server.url, "arcface"))
    assert target.read_bytes() == b"the user's own file" and not server.gets("arcface_weights.pth")
    assert "kept: already there, not fetched by bench" in capsys.readouterr().out


def test_recognizers_without_an_official_download_are_refused(fetch_cfg, server):
    with pytest.raises(official.FetchFailed, match="facenet512_opencv, mobilefacenet"):
        weights.fetch(fetch_cfg(server.url, "facenet512_opencv", "mobilefacenet"))


def test_deepface_urls_come_from_deepfaces_own_modules():
    for recognizer, (module, attribute, file_name) in DEEPFACE_FILES.items():
        model = {"deepid": "DeepID", "openface": "OpenFace", "deepface": "DeepFace", "facenet": "Facenet",
                 "facenet512": "Facenet512", "dlib": "Dlib", "arcface": "ArcFace"}[recognizer]
        urls, compress, origin = official.deepface_urls(model, "pytorch", file_name)
        assert origin == f"{module}.{attribute}" and urls[0] == deepface_url(recognizer)
        assert compress == ("bz2" if recognizer == "dlib" else None)


def test_rehost_keeps_the_path():
    url = "https://github.com/serengil/deepface_models/releases/download/v1.0/facenet_weights.pth"
    assert official.rehost(url, None) == url
    assert official.rehost(url, "http://mirror.example/prefix/") == \
        "http://mirror.example/prefix/serengil/deepface_models/releases/download/v1.0/facenet_weights.pth"
