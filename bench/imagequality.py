"""Per-pair image measures between two aligned face crops, all through torchmetrics
(Fig. 4's PSNR, SSIM and RMSE), plus the utility measures beyond the paper: landmark NME and
head-pose difference between a source face and its anonymized result."""
from __future__ import annotations

import cv2
import numpy as np
import torch
from torchmetrics.functional import mean_squared_error
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous().float() / 255.0


def pixel_measures(sources: np.ndarray, results: np.ndarray) -> dict[str, np.ndarray]:
    """PSNR (dB), SSIM and RMSE (on [0, 1] pixels) of each source/result crop pair."""
    a, b = to_tensor(results), to_tensor(sources)
    psnr = peak_signal_noise_ratio(a, b, data_range=1.0, reduction="none", dim=(1, 2, 3))
    ssim = structural_similarity_index_measure(a, b, data_range=1.0, reduction="none")
    rmse = torch.stack([mean_squared_error(x, y, squared=False) for x, y in zip(a, b)])
    return {"psnr": psnr.numpy(), "ssim": ssim.numpy(), "rmse": rmse.numpy()}


def landmark_nme(source: np.ndarray, result: np.ndarray) -> float:
    """Mean distance of the five landmarks, over the source's inter-ocular distance."""
    source, result = np.asarray(source).reshape(5, 2), np.asarray(result).reshape(5, 2)
    inter_ocular = np.linalg.norm(source[1] - source[0])
    return float(np.linalg.norm(source - result, axis=1).mean() / max(inter_ocular, 1e-6))


# A generic head (millimetres, x right, y down, z towards the camera) at the five ArcFace
# landmarks. Only differences between two poses are reported, so its bias cancels.
HEAD_MODEL = np.array([
    [-32.0, -35.0, -25.0], [32.0, -35.0, -25.0], [0.0, 0.0, 0.0], [-25.0, 32.0, -20.0], [25.0, 32.0, -20.0],
])


def head_pose(landmarks: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """(yaw, pitch, roll) in degrees from five landmarks by PnP against HEAD_MODEL."""
    height, width = image_size
    camera = np.array([[width, 0, width / 2], [0, width, height / 2], [0, 0, 1]], np.float64)
    ok, rvec, _ = cv2.solvePnP(HEAD_MODEL, np.asarray(landmarks, np.float64).reshape(5, 2), camera, None,
                               flags=cv2.SOLVEPNP_EPNP)
    if not ok:
        return np.full(3, np.nan)
    rotation, _ = cv2.Rodrigues(rvec)
    pitch, yaw, roll = cv2.RQDecomp3x3(rotation)[0]
    return np.array([yaw, pitch, roll])


def pose_difference(source: np.ndarray, result: np.ndarray, image_size: tuple[int, int]) -> float:
    """Mean absolute (yaw, pitch, roll) difference in degrees."""
    diff = np.abs(head_pose(source, image_size) - head_pose(result, image_size))
    diff = np.minimum(diff, 360 - diff)
    return float(diff.mean())
