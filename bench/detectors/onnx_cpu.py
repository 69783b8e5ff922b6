"""What the onnxruntime-backed detectors share: a small CPU session and non-maximum
suppression (numpy; cv2.dnn.NMSBoxes has no "min" overlap that MTCNN's last stage uses)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def cpu_options():
    """onnxruntime SessionOptions for a detector's CPU session: onnxruntime's defaults, without
    the CPU memory arena.

    The arena keeps the largest activations a session ever needed for the life of the process
    and never hands them back: a detector run at a photo's native resolution (MTCNN's P-Net,
    CenterFace) on one 2280x1588 photo holds ~600 MB each after that photo, and the anonymize
    stage runs two instances of most detectors (the inventory's ensemble and the audit), so
    arenas alone took the stage past 4 GiB. Without it, a run's buffers are freed when it
    ends. It changes where buffers live, not what is computed: detections are identical.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.enable_cpu_mem_arena = False
    return options


def cpu_session(model: str | Path | bytes, threads: int = 1):
    """An onnxruntime CPU session with `threads` intra-op threads, no inter-op pool and no
    memory arena (see `cpu_options`).

    Args:
        model: an .onnx path, or a serialized ModelProto (after an in-memory edit).
        threads: intra-op threads; 1-2 here, where other work shares two cores.
    """
    import onnxruntime as ort

    options = cpu_options()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # old exports warn once per initializer listed as an input
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: str = "union") -> np.ndarray:
    """Indices of the boxes that survive greedy non-maximum suppression, best score first.

    Args:
        boxes: (N, 4) x1, y1, x2, y2 in pixels.
        scores: (N,) higher is better.
        threshold: a box is dropped when its overlap with a kept one exceeds this.
        mode: "union" (IoU) or "min" (intersection over the smaller box: drops a box
            nested inside a kept one, as MTCNN's output stage does).
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    area = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        w = np.clip(np.minimum(boxes[best, 2], boxes[rest, 2]) - np.maximum(boxes[best, 0], boxes[rest, 0]), 0, None)
        h = np.clip(np.minimum(boxes[best, 3], boxes[rest, 3]) - np.maximum(boxes[best, 1], boxes[rest, 1]), 0, None)
        inter = w * h
        if mode == "min":
            overlap = inter / (np.minimum(area[best], area[rest]) + 1e-9)
        elif mode == "union":
            overlap = inter / (area[best] + area[rest] - inter + 1e-9)
        else:
            raise ValueError(f"unknown NMS mode {mode!r} (union or min)")
        order = rest[overlap <= threshold]
    return np.array(keep, dtype=np.int64)
