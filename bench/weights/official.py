"""`python -m bench weights fetch`: deepface's and insightface's own official weights, downloaded
by the libraries' own downloaders from the libraries' own URLs into their usual caches. Needs
the internet (these machines reach only the package registries: there it fails, per model).

For each recognizer in `weights.fetch.recognizers` (conf/recognizer/ names):

- a deepface client (`DeepfaceRecognizer`): the URL list that deepface's client module for the
  configured backend defines for the very file the recognizer loads (e.g.
  `deepface.models.facial_recognition.pytorch.Facenet.FACENET128_WEIGHTS` for
  `facenet_weights.pth`; deepface names a file after its primary URL), downloaded by
  `deepface.commons.weight_utils.download_weights_if_necessary` into
  `<paths.deepface_home>/.deepface/weights/` (deepface's `$DEEPFACE_HOME/.deepface/weights`) and
  decompressed as deepface does (Dlib's `.bz2`);
- an insightface model pack (`InsightfaceRecognizer` whose model file lies in
  `<paths.insightface_models>/<pack>/`): `insightface.utils.storage.download`, the pack's zip
  from insightface's model-zoo release, unpacked into `<paths.insightface_models>/<pack>/`.

Every file fetched is recorded in `weights.manifest` (the file `weights provision` writes):
sha256, size in bytes, the URL it came from, the library and its version, and the time (UTC).
A file already in place (provisioned offline, or downloaded earlier) is kept, never replaced.
`weights.fetch.mirror` (a base URL) replaces the scheme and host of every URL the libraries use,
their paths kept: a mirror, or the local server of tests/test_weights_fetch.py.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import logging
import os
import re
import shutil
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

from omegaconf import DictConfig
from tabulate import tabulate

from bench import resultsio
from bench.errors import BenchError

log = logging.getLogger(__name__)

FETCHED_BY = "bench weights fetch"


class FetchFailed(BenchError):
    """Weights could not be fetched; the message says which, from where and why.

    Attributes:
        reason: the why alone (e.g. "HTTP 404"), for the summary table.
    """

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = reason or message


def rehost(url: str, mirror: str | None) -> str:
    """`url` with its scheme and host replaced by `mirror` (a base URL, maybe with a path
    prefix), its path and query kept; `url` itself when `mirror` is empty.

    >>> rehost("https://github.com/serengil/deepface_models/releases/download/v1.0/x.pth", "http://127.0.0.1:8000")
    'http://127.0.0.1:8000/serengil/deepface_models/releases/download/v1.0/x.pth'
    """
    if not mirror:
        return url
    parts = urlsplit(url)
    return str(mirror).rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")


def library_version(package: str) -> str:
    try:
        return f"{package} {importlib.metadata.version(package)}"
    except importlib.metadata.PackageNotFoundError:
        return package


def file_record(path: Path, recognizer: str, library: str, source: str, url: str, **extra) -> dict:
    """A manifest entry for a file a library downloaded: sha256 (hex), size (bytes), url, time (UTC, ISO 8601)."""
    return {"recognizer": recognizer, "by": FETCHED_BY, "library": library, "source": source, "url": url,
            "sha256": resultsio.sha256_file(path), "size": path.stat().st_size,
            "fetched_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **extra}


def already_there(path: Path, manifest: dict) -> dict:
    """The row for a file that is in place before fetching: kept as it is, whoever put it there."""
    entry = manifest["files"].get(str(path))
    sha = resultsio.sha256_file(path)
    if entry and entry.get("by") == FETCHED_BY and entry.get("sha256") == sha:
        status = "already fetched"
    elif entry and entry.get("sha256") == sha:
        status = f"kept: {entry.get('by', 'bench weights provision')} ({entry.get('source')})"
    elif entry:
        status = f"kept: changed since {entry.get('by', 'bench weights provision')} put it there (sha256 differs from the manifest)"
    else:
        status = "kept: already there, not fetched by bench (deepface's or insightface's own download, or placed by hand)"
    return {"status": status, "path": str(path), "sha256": sha, "url": (entry or {}).get("url", "")}


@dataclass(frozen=True)
class DeepfaceDownload:
    """One deepface weights file, as deepface's own client for `backend` downloads it.

    Attributes:
        recognizer: the conf/recognizer/ name.
        file_name: the file deepface's client loads (and names after its primary URL).
        home: DEEPFACE_HOME; the file goes to <home>/.deepface/weights/<file_name>.
        urls: deepface's own URLs for it, primary first, backups after.
        compress: "bz2" or "zip" when deepface downloads <file_name>.<compress> and unpacks it.
        origin: the module attribute the URLs come from, e.g. "...pytorch.Facenet.FACENET128_WEIGHTS".
    """

    recognizer: str
    file_name: str
    home: Path
    urls: tuple[str, ...]
    compress: str | None
    origin: str

    @property
    def target(self) -> Path:
        from bench.recognizers.deepface_client import deepface_weights_dir

        return deepface_weights_dir(self.home) / self.file_name

    def run(self, manifest: dict, mirror: str | None) -> dict:
        """Downloads the file unless it is there; returns its row, adds its manifest entry.

        Raises:
            FetchFailed: every URL failed (each URL's reason in the message).
        """
        from deepface.commons import folder_utils, weight_utils

        from bench.recognizers.deepface_client import deepface_home

        if self.target.is_file():
            return already_there(self.target, manifest)
        with deepface_home(self.home):
            folder_utils.initialize_folder()  # as `import deepface.DeepFace` does: the downloader expects the folder
        reasons: dict[str, str] = {}
        # One URL per call, in deepface's order (deepface's own fallback loop does the same
        # with the list): so the manifest says which URL the file came from.
        for url in (rehost(u, mirror) for u in self.urls):
            try:
                with deepface_home(self.home):
                    weight_utils.download_weights_if_necessary(file_name=self.file_name, source_url=url,
                                                               compress_type=self.compress)
            except Exception as err:  # requests, gdown, bz2, OS errors: reported per URL
                reasons[url] = describe(err)
                log.debug("%s: %s failed", self.recognizer, url, exc_info=True)
                continue
            if not self.target.is_file():
                raise FetchFailed(f"deepface reported {self.file_name} downloaded from {url}, but {self.target} is absent")
            entry = file_record(self.target, self.recognizer, library_version("deepface"),
                                f"deepface's own download ({self.origin})", url,
                                **({"compress": self.compress} if self.compress else {}))
            manifest["files"][str(self.target)] = entry
            return {"status": "fetched", "path": str(self.target), "sha256": entry["sha256"], "url": url}
        if len(set(reasons.values())) == 1:
            reason = next(iter(reasons.values()))
            raise FetchFailed(f"deepface could not download {self.file_name} from {' or '.join(reasons)}: {reason}",
                              reason)
        raise FetchFailed(f"deepface could not download {self.file_name}: "
                          + "; ".join(f"{url}: {reason}" for url, reason in reasons.items()),
                          " / ".join(dict.fromkeys(reasons.values())))


@dataclass(frozen=True)
class InsightfacePack:
    """One insightface model pack (e.g. buffalo_l), as `insightface.utils.storage.download` fetches it.

    Attributes:
        recognizer: the conf/recognizer/ name.
        pack: the pack's name; insightface downloads <model-zoo release>/<pack>.zip.
        models_dir: insightface's models folder (<root>/models); the pack unpacks to models_dir/<pack>/.
        model_file: the file in the pack the recognizer loads (e.g. .../buffalo_l/w600k_r50.onnx).
    """

    recognizer: str
    pack: str
    models_dir: Path
    model_file: Path

    def run(self, manifest: dict, mirror: str | None) -> dict:
        """Downloads and unpacks the pack unless the recognizer's file is there; every file of
        the pack gets a manifest entry. A failed download or unpacking leaves no folder behind
        (insightface would otherwise take an empty folder for the pack next time).

        Raises:
            FetchFailed: the pack was unpacked but lacks the recognizer's file.
        """
        from insightface.utils import storage

        if self.model_file.is_file():
            return already_there(self.model_file, manifest)
        pack_dir = self.models_dir / self.pack
        zip_path = self.models_dir / f"{self.pack}.zip"
        existed = pack_dir.exists()
        with rehosted_model_zoo(storage, mirror):
            url = storage.model_zoo_download_url(f"{self.pack}.zip")
            try:
                # force: a pack folder without the recognizer's file is an incomplete pack, and
                # insightface's ensure_available would return it as it is.
                storage.download(self.models_dir.name, self.pack, force=existed, root=str(self.models_dir.parent))
            except BaseException as err:
                if not existed:
                    shutil.rmtree(pack_dir, ignore_errors=True)
                    with contextlib.suppress(OSError):
                        zip_path.unlink()
                if isinstance(err, Exception):  # requests, zipfile, OS errors: one line
                    reason = describe(err)
                    raise FetchFailed(f"insightface could not download {url}: {reason}", reason) from err
                raise
        if not self.model_file.is_file():
            found = sorted(str(p.relative_to(pack_dir)) for p in pack_dir.rglob("*") if p.is_file())
            raise FetchFailed(f"{url} unpacked into {pack_dir} has no {self.model_file.name} (it has: {', '.join(found) or 'nothing'})")
        library = library_version("insightface")
        zip_sha = resultsio.sha256_file(zip_path) if zip_path.is_file() else None
        for path in sorted(p for p in pack_dir.rglob("*") if p.is_file()):
            manifest["files"][str(path)] = file_record(path, self.recognizer, library,
                                                       f"insightface's own download (model pack {self.pack})", url,
                                                       zip_sha256=zip_sha)
        entry = manifest["files"][str(self.model_file)]
        return {"status": "fetched", "path": str(self.model_file), "sha256": entry["sha256"], "url": url}


@contextlib.contextmanager
def rehosted_model_zoo(storage, mirror: str | None):
    """insightface's model-zoo base URL re-hosted on `mirror` while the block runs (insightface
    reads the module constant on each download)."""
    original = storage.MODEL_ZOO_RELEASE_DOWNLOAD_URL
    storage.MODEL_ZOO_RELEASE_DOWNLOAD_URL = rehost(original, mirror)
    try:
        yield
    finally:
        storage.MODEL_ZOO_RELEASE_DOWNLOAD_URL = original


def deepface_urls(model_name: str, backend: str, file_name: str) -> tuple[tuple[str, ...], str | None, str]:
    """deepface's own URLs for `file_name`, from the client module of `model_name` for `backend`.

    Returns:
        (urls primary first, compression "bz2"/"zip" or None, "module.ATTRIBUTE" they come from).
    Raises:
        BenchError: deepface has no such model for the backend, or its module no URL for the file.
    """
    from deepface.commons import weight_utils
    from deepface.modules import modeling
    from deepface.modules.exceptions import UnimplementedError

    from bench.recognizers.deepface_client import use_backend

    use_backend(backend)
    try:
        module = importlib.import_module(modeling.get_model_class("facial_recognition", model_name).__module__)
    except UnimplementedError as err:
        raise BenchError(f"deepface has no {model_name} for its {backend} backend: {err}") from err
    for attribute, value in vars(module).items():
        urls = [value] if isinstance(value, str) else value
        if not (attribute.isupper() and isinstance(urls, (list, tuple)) and urls
                and all(isinstance(u, str) and u.startswith(("http://", "https://")) for u in urls)):
            continue
        name = urlsplit(urls[0]).path.rsplit("/", 1)[-1]  # deepface names the file after its primary URL
        compress = next((c for c in weight_utils.ALLOWED_COMPRESS_TYPES if name.endswith(f".{c}")), None)
        if compress:
            name = name[: -len(compress) - 1]
        if name == file_name:
            return tuple(urls), compress, f"{module.__name__}.{attribute}"
    raise BenchError(f"deepface's {module.__name__} defines no download URL for {file_name}")


def plan(name: str, cfg: DictConfig) -> DeepfaceDownload | InsightfacePack:
    """What fetching recognizer `name`'s weights means: a deepface file or an insightface pack.

    Raises:
        BenchError: the recognizer's weights are none of the libraries' downloads (a stand-in,
            or a converted file in a home of bench's own, which `weights provision` makes).
    """
    from bench.recognizers import build_recognizer
    from bench.recognizers.deepface_client import DeepfaceRecognizer
    from bench.recognizers.insightface_model import InsightfaceRecognizer

    recognizer = build_recognizer(name, cfg)
    if isinstance(recognizer, DeepfaceRecognizer):
        home = Path(recognizer.deepface_home).expanduser()
        if os.path.abspath(home) != os.path.abspath(Path(str(cfg.paths.deepface_home)).expanduser()):
            raise BenchError(f"its weights live in a home of bench's own ({home}), not deepface's cache: "
                             "deepface's own file never goes there (`weights provision` makes it)")
        if not recognizer.weight_file:
            raise BenchError(f"no weight file configured for deepface's {recognizer.backend} backend")
        urls, compress, origin = deepface_urls(recognizer.model_name, recognizer.backend, recognizer.weight_file)
        return DeepfaceDownload(name, recognizer.weight_file, home, urls, compress, origin)
    if isinstance(recognizer, InsightfaceRecognizer):
        models_dir = Path(os.path.abspath(Path(str(cfg.paths.insightface_models)).expanduser()))
        for path in recognizer.weights():
            parts = Path(os.path.abspath(path)).parts
            if parts[: len(models_dir.parts)] == models_dir.parts and len(parts) >= len(models_dir.parts) + 2:
                return InsightfacePack(name, parts[len(models_dir.parts)], models_dir, Path(os.path.abspath(path)))
        raise BenchError(f"none of its model files ({', '.join(map(str, recognizer.weights()))}) is in an insightface "
                         f"model pack under {models_dir}")
    raise BenchError(f"{type(recognizer).__name__} weights are not downloaded by deepface or insightface")


def describe(err: BaseException) -> str:
    """One line for what went wrong in a library's download (the innermost cause)."""
    import requests

    while err.__cause__ is not None:
        err = err.__cause__
    status = re.search(r"responded with status code (\d+)", str(err))  # deepface's HEAD check
    if status:
        return f"HTTP {status.group(1)}"
    if isinstance(err, RuntimeError) and str(err).startswith("Failed downloading url"):
        return "the server did not answer 200 OK (e.g. HTTP 404)"  # insightface says no more
    if isinstance(err, requests.exceptions.ConnectionError):
        host = urlsplit(err.request.url).netloc if getattr(err, "request", None) is not None else "the host"
        return f"cannot connect to {host} (no network, or the host is down)"
    if isinstance(err, requests.exceptions.Timeout):
        return "timed out"
    if isinstance(err, zipfile.BadZipFile):
        return f"the download is not a valid zip file ({err}): a broken or interrupted download, or an error page"
    if isinstance(err, OSError) and "Invalid data stream" in str(err):  # bz2's word for it
        return "the download is not valid bz2 data: a broken download, or an error page"
    return f"{type(err).__name__}: {err}".strip()


def fetch(cfg: DictConfig) -> dict:
    """Fetches every `weights.fetch.recognizers` entry's weights; prints one row per recognizer.

    Returns:
        The manifest ({"files": {path: entry}}), written to `weights.manifest` after each recognizer.
    Raises:
        FetchFailed: at the end, when any recognizer failed (the others are in place by then).
    """
    from bench.weights import read_manifest

    manifest_path = Path(str(cfg.weights.manifest)).expanduser()
    manifest = read_manifest(manifest_path)
    mirror = cfg.weights.fetch.get("mirror") or None
    rows, failed = [], []
    for name in [str(n) for n in cfg.weights.fetch.recognizers]:
        try:
            row = plan(name, cfg).run(manifest, mirror)
        # Beyond our own errors the libraries raise what their downloads raise (requests,
        # gdown, zipfile, bz2, OSError, ValueError): one line per model, never a traceback.
        except Exception as err:
            message = str(err) if isinstance(err, BenchError) else describe(err)
            log.error("weights fetch %s: %s", name, message)
            log.debug("%s", name, exc_info=True)
            reason = getattr(err, "reason", message)
            row = {"status": f"FAILED: {reason if len(reason) <= 100 else reason[:97] + '...'}",
                   "path": "", "sha256": "", "url": ""}
            failed.append(name)
        rows.append({"recognizer": name, **row})
        if row["status"] == "fetched":
            resultsio.write_json(manifest, manifest_path)  # after each: an interrupted run keeps what it did
    print(tabulate([[r["recognizer"], r["status"], r["path"], r["sha256"][:12], r["url"]] for r in rows],
                   headers=["recognizer", "status", "path", "sha256", "url"], tablefmt="github"))
    if failed:
        others = "" if len(failed) == len(rows) else "; the others are in place"
        raise FetchFailed(f"{len(failed)} of {len(rows)} recognizers' weights could not be fetched "
                          f"({', '.join(failed)}){others}; see the lines above")
    return manifest
