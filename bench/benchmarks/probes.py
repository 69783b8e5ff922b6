"""Where a stage's time goes, without editing stage code: timing probes wrapped around the
library functions that load models, call them, decode images and read or write files.

A probe replaces `module.attribute` (a function, a method of a class, a constructor's
`__init__`) with a wrapper that times the call into one category of CATEGORIES. Probes whose
module is not imported yet are installed the moment it is (the import probe looks after each
import), so the runner imports nothing a stage would not.

Time is attributed exclusively: each instant goes to at most one category. A call inside a
probed call of the same or a higher priority belongs to the outer one (the file reads of
`torch.load` are model loading, a model's warm-up run inside `prepare()` too); a call of a
higher priority takes the time over while it runs (an `import torch` inside a model's
`prepare()` is import time). Priority is the order of CATEGORIES. Only the main thread is
timed (worker threads' calls pass through untimed). What no probe covers is "other" (numpy
work, alignment, rendering, pandas, Hydra's config composition, Python itself).

Imports only the standard library: the runner installs the probes before anything else.
"""
from __future__ import annotations

import functools
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

# Highest priority first (see the module docstring).
CATEGORIES = ("imports", "model_load", "model_call", "decode", "io")
RANK = {name: rank for rank, name in enumerate(CATEGORIES)}
LABELS = {"imports": "imports", "model_load": "model loading", "model_call": "model calls",
          "decode": "image decoding", "io": "file I/O"}

# category -> "module:attribute.path" targets. A target whose module is never imported, or
# whose attribute does not exist in the installed version, is listed as not probed.
PROBES: dict[str, tuple[str, ...]] = {
    "imports": ("builtins:__import__", "importlib:import_module"),
    "model_load": (
        # Every model-backed component loads its weights in prepare() (bench.component).
        "bench.component:Component.prepare",
        "bench.agegender:AgeAndGenderPackage.prepare",
        "bench.agegender:InsightfaceGenderAge.prepare",
        "deepface.modules.modeling:build_model",  # what DeepFace.verify/represent call
        "onnxruntime:InferenceSession.__init__",
        "torch:load", "torch.jit:load",
        "dlib:face_recognition_model_v1.__init__", "dlib:shape_predictor.__init__",
        "dlib:cnn_face_detection_model_v1.__init__", "dlib:get_frontal_face_detector",
        "cv2:FaceDetectorYN.create", "cv2:CascadeClassifier.__init__",
        "cv2.dnn:readNet", "cv2.dnn:readNetFromONNX", "cv2.dnn:readNetFromTensorflow",
        "insightface.model_zoo:get_model",
    ),
    "model_call": (
        "onnxruntime:InferenceSession.run",
        "torch.nn:Module.__call__",
        "dlib:face_recognition_model_v1.compute_face_descriptor",
        # Detectors with parallel > 1 (dlib_hog's threads) scan in worker threads: the wait.
        "bench.detectors.base:Detector._detect_in_threads",
        "dlib:fhog_object_detector.run", "dlib:fhog_object_detector.__call__",
        "dlib:shape_predictor.__call__", "dlib:cnn_face_detection_model_v1.__call__",
        "cv2:FaceDetectorYN.detect", "cv2:CascadeClassifier.detectMultiScale", "cv2.dnn:Net.forward",
    ),
    "decode": (
        "bench.images:load_photo",  # PIL open + decode + EXIF turn + RGB conversion
        "cv2:imread", "cv2:imdecode",
        "PIL.Image:open", "PIL.ImageFile:ImageFile.load",
    ),
    "io": (
        "pandas:read_parquet", "pandas:read_csv", "pandas:DataFrame.to_parquet", "pandas:DataFrame.to_csv",
        "numpy:load", "numpy:save", "numpy:savez", "numpy:savez_compressed",
        "json:load", "json:dump",
        "bench.resultsio:write_text", "bench.resultsio:write_png", "bench.resultsio:sha256_file",
        "cv2:imwrite", "PIL.Image:Image.save",
        "shutil:copyfile", "shutil:copytree", "shutil:rmtree",
    ),
}


@dataclass
class Frame:
    category: str
    target: str
    owner: bool  # this call's time is counted (no outer call of the same or higher priority)
    start: float


@dataclass
class CategoryClock:
    """Exclusive time per category from nested enter/exit calls (see the module docstring).

    Attributes:
        seconds: category -> seconds attributed to it.
        target_seconds: target -> seconds attributed while it was the owning call.
        calls: target -> calls (every call, nested or not).
    """

    now: Callable[[], float] = time.perf_counter
    seconds: dict[str, float] = field(default_factory=dict)
    target_seconds: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    _stack: list[Frame] = field(default_factory=list)

    def _owner(self) -> Frame | None:
        for frame in reversed(self._stack):
            if frame.owner:
                return frame
        return None

    def _add(self, frame: Frame, seconds: float) -> None:
        self.seconds[frame.category] = self.seconds.get(frame.category, 0.0) + seconds
        self.target_seconds[frame.target] = self.target_seconds.get(frame.target, 0.0) + seconds

    def enter(self, category: str, target: str) -> Frame:
        now = self.now()
        self.calls[target] = self.calls.get(target, 0) + 1
        owner = self._owner()
        takes_over = owner is None or RANK[category] < RANK[owner.category]
        if takes_over and owner is not None:
            self._add(owner, now - owner.start)  # paused until this call returns
        frame = Frame(category, target, takes_over, now)
        self._stack.append(frame)
        return frame

    def exit(self, frame: Frame) -> None:
        now = self.now()
        while self._stack:  # calls exit in LIFO order (try/finally); the loop only guards against misuse
            top = self._stack.pop()
            if top.owner:
                self._add(top, now - top.start)
                outer = self._owner()
                if outer is not None:
                    outer.start = now  # resumes
            if top is frame:
                return

    def in_category(self, category: str) -> bool:
        """Whether the innermost running probed call is of `category`."""
        return bool(self._stack) and self._stack[-1].category == category

    def snapshot(self) -> dict[str, float]:
        """seconds per category so far, including the running owner's time."""
        out = {name: self.seconds.get(name, 0.0) for name in CATEGORIES}
        owner = self._owner()
        if owner is not None:
            out[owner.category] += self.now() - owner.start
        return out


def wrap(fn: Callable, category: str, target: str, clock: CategoryClock, thread: int | None = None) -> Callable:
    """`fn` timed into `category` on `clock` (calls from other threads than `thread`, the
    main thread by default, pass through untimed)."""
    main = threading.main_thread().ident if thread is None else thread

    @functools.wraps(fn)
    def probe(*args, **kwargs):
        if threading.get_ident() != main:
            return fn(*args, **kwargs)
        frame = clock.enter(category, target)
        try:
            return fn(*args, **kwargs)
        finally:
            clock.exit(frame)

    probe.__probed__ = fn
    return probe


@dataclass
class Installer:
    """Installs PROBES-style targets on a clock, now or when their module gets imported.

    Attributes:
        installed: targets wrapped.
        missing: target -> why it is not probed (module never imported, attribute absent,
            attribute not settable), filled by `finish()`.
    """

    clock: CategoryClock
    targets: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(PROBES))
    installed: list[str] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)
    # module name -> [(attribute path, category, target)] still to install
    _pending: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    _modules_seen: int = -1
    _recheck: bool = False
    _originals: list[tuple[object, str, object]] = field(default_factory=list)

    def install(self) -> "Installer":
        for category, targets in self.targets.items():
            for target in targets:
                module_name, _, path = target.partition(":")
                self._pending.setdefault(module_name, []).append((path, category, target))
        self.poll()
        return self

    def poll(self) -> None:
        """Installs the pending targets whose module is imported, and done running its body,
        now. Cheap when no module was added since the last look and none was half-imported."""
        if not self._pending or (len(sys.modules) == self._modules_seen and not self._recheck):
            return
        self._modules_seen = len(sys.modules)
        self._recheck = False
        for module_name in list(self._pending):
            module = sys.modules.get(module_name)
            if module is None:
                continue
            if getattr(getattr(module, "__spec__", None), "_initializing", False):
                self._recheck = True  # still running its body: look again after the next import
                continue
            for path, category, target in self._pending.pop(module_name):
                self._install_one(module, path, category, target)

    def _install_one(self, module, path: str, category: str, target: str) -> None:
        *owners, attr = path.split(".")
        holder = module
        for name in owners:
            holder = getattr(holder, name, None)
        original = getattr(holder, attr, None) if holder is not None else None
        if original is None:
            self.missing[target] = "no such attribute in the installed version"
            return
        if getattr(original, "__probed__", None) is not None:
            return
        probe = wrap(original, category, target, self.clock)
        if category == "imports":
            probe = self._polling(probe)
        try:
            setattr(holder, attr, probe)
        except (AttributeError, TypeError) as err:
            self.missing[target] = f"cannot be wrapped: {err}"
            return
        self._originals.append((holder, attr, original))
        self.installed.append(target)

    def _polling(self, probe: Callable) -> Callable:
        """An import probe that installs the pending targets after every import (nested ones
        too: `from bench.images import load_photo` in a module body must bind the probe, so
        bench.images' probes go in as soon as its own import returns). An import nested in
        another one is not timed apart: its time is the outer import's anyway, and imports
        run by the hundred thousand (every import statement of every module body)."""
        original = probe.__probed__

        @functools.wraps(probe)
        def importing(*args, **kwargs):
            try:
                if self.clock.in_category("imports"):
                    return original(*args, **kwargs)
                return probe(*args, **kwargs)
            finally:
                self.poll()

        importing.__probed__ = original
        return importing

    def finish(self) -> dict[str, str]:
        """Marks what never got installed (its module was never imported); returns `missing`."""
        self._recheck = True
        self.poll()
        for entries in self._pending.values():
            for _, _, target in entries:
                self.missing.setdefault(target, "module not imported by this stage")
        self._pending.clear()
        return self.missing

    def uninstall(self) -> None:
        """Puts every original back (tests; the runner's process just exits)."""
        for holder, attr, original in reversed(self._originals):
            setattr(holder, attr, original)
        self._originals.clear()


def install(clock: CategoryClock, targets: dict[str, tuple[str, ...]] | None = None) -> Installer:
    """Installs `targets` (default PROBES) on `clock`; returns the Installer."""
    installer = Installer(clock, dict(PROBES if targets is None else targets))
    return installer.install()
