"""Where a recognizer's default verification thresholds come from, named in its YAML by
`threshold_source`:

- `deepface:<Model>`: deepface's own pre-tuned table (deepface/config/threshold.py), read at
  run time through deepface's accessor `find_threshold`, so an upgrade of deepface is seen.
- `calibration:<file>.json`: thresholds fitted on the identities set by
  `python -m bench calibrate` (bench/recognizers/calibration.py); relative names are
  taken from conf/calibration/. Stand-in networks use this: never another model's numbers.
"""
from __future__ import annotations

import json
from pathlib import Path

from bench.config import CONF_DIR
from bench.errors import BenchError
from bench.recognizers.base import METRICS

CALIBRATION_DIR = CONF_DIR / "calibration"


class ThresholdsUnavailable(BenchError, KeyError):
    """A recognizer has no threshold for a metric (no source, or calibration not run yet)."""

    def __str__(self) -> str:
        return str(self.args[0])


def deepface_thresholds(model_name: str) -> dict[str, float]:
    """{metric: threshold} from deepface's table for `model_name` (e.g. "Facenet512")."""
    from deepface.modules.verification import find_threshold

    try:
        return {metric: float(find_threshold(model_name, metric)) for metric in METRICS}
    except ValueError as err:
        raise ThresholdsUnavailable(f"deepface has no thresholds for {model_name!r}: {err}") from err


def calibration_path(file: str) -> Path:
    path = Path(file).expanduser()
    return path if path.is_absolute() else CALIBRATION_DIR / path


def read_calibration(file: str) -> dict:
    path = calibration_path(file)
    if not path.is_file():
        raise ThresholdsUnavailable(
            f"calibration file {path} not found; run `python -m bench calibrate recognizers=[NAME]`")
    return json.loads(path.read_text(encoding="utf-8"))


def load_thresholds(source: str | None, name: str) -> dict[str, float]:
    """{metric: threshold} from a `threshold_source` string (see the module docstring)."""
    if not source:
        raise ThresholdsUnavailable(
            f"recognizer {name!r} has no threshold_source; set one in conf/recognizer/{name}.yaml "
            "or give thresholds explicitly")
    kind, _, value = str(source).partition(":")
    if kind == "deepface":
        return deepface_thresholds(value)
    if kind == "calibration":
        return {m: float(v) for m, v in read_calibration(value)["thresholds"].items()}
    raise ThresholdsUnavailable(f"recognizer {name!r}: unknown threshold_source {source!r} "
                                "(use deepface:<Model> or calibration:<file>.json)")
