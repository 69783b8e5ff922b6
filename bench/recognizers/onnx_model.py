"""Any ONNX face recognizer whose input size, channel order and normalisation are declared
in its YAML (never guessed from the graph): aligned crop -> (x - mean) / std -> NCHW."""
from __future__ import annotations


import numpy as np

from bench.detectors.base import first_existing
from bench.errors import BenchError
from bench.recognizers.base import ModelFileRecognizer


class OnnxRecognizer(ModelFileRecognizer):
    """Args:
        model_paths: candidate .onnx files, the first existing one is used.
        mean, std: per-pixel normalisation of 0..255 values, (x - mean) / std.
        channels: "rgb" or "bgr", the order the network was trained on.
        threshold_source: deepface:<Model> or calibration:<file>.json (bench.recognizers.thresholds).
    """

    def __init__(self, model_paths, mean: float = 127.5, std: float = 127.5, channels: str = "rgb",
                 threshold_source: str | None = None, input_size: int = 112, margin: float = 0.0,
                 batch_size: int = 32, thresholds: dict | None = None):
        super().__init__(model_paths, threshold_source=threshold_source, input_size=input_size, margin=margin,
                         batch_size=batch_size, thresholds=thresholds)
        if channels not in ("rgb", "bgr"):
            raise ValueError(f"channels must be rgb or bgr, not {channels!r}")
        self.mean, self.std, self.channels = float(mean), float(std), channels

    def _load(self) -> None:
        import onnxruntime as ort

        path = first_existing(self.name, self.model_paths)
        self._session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        spec = self._session.get_inputs()[0]
        if len(spec.shape) != 4 or list(spec.shape[1:]) != [3, self.input_size, self.input_size]:
            raise BenchError(f"{self.name}: {path.name} takes {spec.shape}, but its config declares "
                             f"(N, 3, {self.input_size}, {self.input_size})")
        self._input = spec.name
        self._fixed_batch = spec.shape[0] if isinstance(spec.shape[0], int) else None

    def _embed(self, crops: np.ndarray) -> np.ndarray:
        x = crops if self.channels == "rgb" else crops[..., ::-1]
        x = ((x.astype(np.float32) - self.mean) / self.std).transpose(0, 3, 1, 2)
        x = np.ascontiguousarray(x)
        if self._fixed_batch == 1:  # some exports fix the batch at one face
            return np.concatenate([self._session.run(None, {self._input: x[i:i + 1]})[0] for i in range(len(x))])
        return self._session.run(None, {self._input: x})[0].reshape(len(x), -1)
