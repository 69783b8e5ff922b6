"""Provenance written beside every result table: the resolved config, the weights and data
it read (with sha256), the seed and the library versions. A number in a table is only as
good as this record of the run that produced it."""
from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

LIBRARIES = (
    "numpy", "pandas", "pyarrow", "pillow", "opencv-contrib-python-headless", "onnxruntime",
    "torch", "torchmetrics", "insightface", "deepface", "dlib", "dlib-bin", "hydra-core", "dvc",
)


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def record(cfg: DictConfig, stage: str, **extra) -> dict:
    """The provenance dict for one stage run; `extra` holds weights, data manifests, counts."""
    return {
        "stage": stage,
        "command": " ".join(sys.argv),
        "config": OmegaConf.to_container(cfg, resolve=True),
        "seed": int(cfg.get("seed", 0)),
        "libraries": library_versions(),
        **extra,
    }


def code_sha256(*modules: str) -> str:
    """sha256 (hex) of the source of `modules` (dotted names, e.g. "bench.detectors.scrfd")
    and of every module of the same top-level package that they import at module level,
    transitively (found with `ast`, not by importing; imports inside functions are not
    followed: those are plumbing such as the registries and caches, not the computation).

    The code part of a cache key (bench.facetable.detector_key,
    bench.embedding_runner.cache_folder): results computed by a changed detector or
    recognizer, or by a helper it imports (NMS, alignment), are computed again instead of read
    back; an edit elsewhere in the project keeps the cache. Like joblib.Memory, which hashes a
    cached function's code, it does not see a changed third-party library: that is what
    the provenance's `libraries` records.
    """
    files = sorted(set().union(*(_import_closure(str(m)) for m in modules)))
    digest = hashlib.sha256()
    for name, path in files:
        digest.update(f"{name}\0{_source_sha256(path)}\n".encode())
    return digest.hexdigest()


def _source_sha256(path: str) -> str:
    from bench.resultsio import file_sha256  # memoized per (path, size, mtime)

    return file_sha256(path)


def _import_closure(module: str) -> set[tuple[str, str]]:
    """{(module name, source path)} of `module` and what it imports at module level from its
    own top-level package, transitively, parent packages included."""
    package = module.split(".")[0]
    seen: dict[str, str] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _source_path(name)
        if path is None:
            continue
        seen[name] = path
        stat = os.stat(path)
        todo += _imported(name, path, package, stat.st_size, stat.st_mtime_ns)
    return set(seen.items())


def _source_path(module: str) -> str | None:
    """The .py file of a dotted module name, looked up from its top-level package's spec
    (nothing is imported); None for a name that is not a module there (a class, a function)."""
    spec = importlib.util.find_spec(module.split(".")[0])
    origin = Path(spec.origin) if spec is not None and spec.origin else None
    if origin is None or origin.suffix != ".py":
        return None
    parts = module.split(".")[1:]
    if not parts:
        return str(origin)
    if origin.name != "__init__.py":  # a plain module has no submodules
        return None
    folder = origin.parent.joinpath(*parts)
    for path in (folder / "__init__.py", folder.with_suffix(".py")):
        if path.is_file():
            return str(path)
    return None


@functools.lru_cache(maxsize=1024)
def _imported(module: str, path: str, package: str, size: int, mtime_ns: int) -> list[str]:  # size, mtime: an edited file is read again
    """Module names of `package` that `module` imports at module level, with their parents."""
    with open(path, "rb") as f:
        tree = ast.parse(f.read(), filename=path)
    is_package = path.endswith("__init__.py")
    names = []
    for node in _module_level(tree.body):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package, one level up per extra dot
                parts = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join(parts + ([base] if base else []))
            names.append(base)
            names += [f"{base}.{alias.name}" for alias in node.names]  # `from pkg import module`
    found = []
    for name in names:
        parts = name.split(".")
        if parts[0] != package:
            continue
        found += [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
    return found


def _module_level(statements):
    """The statements run when a module is imported: its body and the blocks of its
    module-level if / try / with statements (an optional import), not function or class bodies."""
    for node in statements:
        yield node
        if isinstance(node, (ast.If, ast.With)):
            yield from _module_level(node.body + getattr(node, "orelse", []))
        elif isinstance(node, ast.Try):
            yield from _module_level(node.body + node.orelse + node.finalbody
                                     + [stmt for handler in node.handlers for stmt in handler.body])
