"""InsightFace's inswapper_128 through insightface's own INSwapper class (the loader and
paste-back its users call): `INSwapper.get(img, target_face, source_face, paste_back=True)`.

The identity comes from an ArcFace recognition model (inswapper was trained on the
embedding of buffalo_l's w600k_r50), mapped through the `emap` matrix stored in the
inswapper graph. Neither file ships with any package; see conf/generator/inswapper.yaml.
"""
from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

import cv2
import numpy as np

from bench.errors import BenchError
from bench.generators.base import Face, Generator, SwapFailed
from bench.generators.identity import CPU, embedding_size, find_all, identity, insight_face, load_arcface

log = logging.getLogger(__name__)


class InSwapper(Generator):
    """inswapper_128 (128x128 aligned crop, 512-d identity)."""

    def __init__(self, model_paths, recognizer_paths) -> None:
        """
        Args:
            model_paths: candidates for inswapper_128.onnx; the first existing is used.
            recognizer_paths: candidates for the ArcFace recognition ONNX whose embedding
                inswapper was trained on (w600k_r50.onnx from buffalo_l).
        """
        super().__init__()
        self.model_paths = [str(p) for p in model_paths]
        self.recognizer_paths = [str(p) for p in recognizer_paths]

    def weights(self) -> list[Path]:
        return [Path(p).expanduser() for p in self.model_paths + self.recognizer_paths]

    def _load(self) -> None:
        from insightface.model_zoo import get_model
        from insightface.model_zoo.inswapper import INSwapper as InsightINSwapper

        swapper_path, arcface_path = find_all(
            "inswapper", {"inswapper_128.onnx": self.model_paths, "ArcFace recognizer": self.recognizer_paths}
        )
        with contextlib.redirect_stdout(io.StringIO()):  # INSwapper prints its input shape
            swapper = get_model(str(swapper_path), providers=CPU)
        if not isinstance(swapper, InsightINSwapper):
            raise BenchError(f"{swapper_path} is not an inswapper model (insightface loads it as {type(swapper).__name__})")
        arcface = load_arcface(arcface_path)
        size = embedding_size(arcface)
        if size is not None and swapper.emap.shape[0] != size:
            raise BenchError(
                f"{arcface_path} gives {size}-d embeddings but {swapper_path} maps "
                f"{swapper.emap.shape[0]}-d ones (its emap is {swapper.emap.shape})"
            )
        self._swapper, self._arcface = swapper, arcface
        log.info("inswapper: %s with identities from %s", swapper_path, arcface_path)

    def _swap(self, photo: np.ndarray, face: Face, target: np.ndarray, target_face: Face) -> np.ndarray:
        source = identity(self._arcface, target, target_face)  # insightface's source_face
        replaced = insight_face(face, "photo")  # insightface's target_face
        try:
            bgr = self._swapper.get(np.ascontiguousarray(photo[..., ::-1]), replaced, source, paste_back=True)
        except (ValueError, cv2.error) as error:  # e.g. a crop wholly outside the photo
            raise SwapFailed(f"inswapper failed on this face: {error}") from error
        return np.ascontiguousarray(bgr[..., ::-1])
