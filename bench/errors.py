"""Named exceptions. Stages turn them into failure rows or "n/a: ..." cells, never tracebacks."""
from bench.userpaths import shown_path


class BenchError(Exception):
    """Base of every error this harness raises on purpose."""


class ImageLoadError(BenchError):
    """A photo could not be read as an image (corrupt, truncated, empty, too large, ...)."""


class WeightsNotFound(BenchError, FileNotFoundError):
    """A model's weights file is missing; the message says where it was looked for, each path
    as bench.userpaths.shown_path writes it (no folder of this machine); `candidates` keeps
    the paths as given."""

    def __init__(self, model: str, candidates):
        self.model = model
        self.candidates = [str(c) for c in candidates]
        shown = " or ".join(shown_path(c) for c in self.candidates)
        super().__init__(f"weights not found at {shown or '(no path configured)'}")

    def __reduce__(self):  # pickled back from a launcher's worker process (Hydra sweeps)
        return type(self), (self.model, self.candidates)


class DatasetNotFound(BenchError, FileNotFoundError):
    """A dataset's folder is missing; the message says how to add it."""


class FaceTooSmall(BenchError, ValueError):
    """A detected face is too small to align reliably."""


class UnknownComponent(BenchError, KeyError):
    """A registry was asked for a name that no config in conf/<group>/ defines."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class GateFailed(BenchError):
    """The regression gate found violations; `violations` lists them, the message tabulates them."""

    def __init__(self, message: str, violations):
        self.violations = list(violations)
        super().__init__(message)

    def __reduce__(self):  # pickled back from a launcher's worker process (Hydra sweeps)
        return type(self), (str(self), self.violations)
