"""The embedded default pool: faces drawn from PyPI `gan-face-generate`'s DCGAN.

gan-face-generate 1.1.1 (MIT, trained on DigiFace-1M) ships `weights.tar`, the state dict of
the PyTorch tutorial's DCGAN generator (nz=100, ngf=64, 64x64 RGB, tanh output). The package
itself is installed with --no-deps (its metadata pulls torchvision and wandb, which only its
training and plotting scripts use); its `models.Generator` imports torch alone, and the
weights load with `torch.load(weights_only=True)`.

Faces are generated in fixed batches from `torch.Generator().manual_seed(seed)`, so a pool
of n faces is byte-identical across runs and the first k faces of any larger pool of the
same seed are the same k faces.
"""
from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import numpy as np

from bench import resultsio
from bench.errors import WeightsNotFound
from bench.pools.base import Pool
from bench.progress import progress

log = logging.getLogger(__name__)

LATENT = 100  # nz of gan_face_generate's inference script
FEATURES = 64  # ngf
PREFIX = "dcgan_"


def package_weights() -> Path | None:
    """`weights.tar` inside the installed gan_face_generate package (found without importing it)."""
    spec = importlib.util.find_spec("gan_face_generate")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "weights.tar"


class DcganPool(Pool):
    """`n` DCGAN faces, 64x64 PNG, written to `path` by generate()."""

    generated = True

    def __init__(self, name: str, path: str, n: int, seed: int = 0, batch_size: int = 64,
                 weights: str | None = None, missing_hint: str | None = None, **balance):
        super().__init__(name, path, missing_hint, **balance)  # pool.balanced* (bench.pools.balanced)
        if int(n) < 1:
            raise ValueError(f"pool.n must be at least 1, got {n}")
        self.n = int(n)
        self.seed = int(seed)
        self.batch_size = int(batch_size)
        self.weights_file = weights

    def weights(self) -> list[Path]:
        path = Path(self.weights_file) if self.weights_file else package_weights()
        return [path] if path else []

    def _load(self):
        import torch
        from gan_face_generate.models import Generator

        paths = self.weights()
        if not paths or not paths[0].is_file():
            raise WeightsNotFound("gan-face-generate DCGAN", paths or [
                "<pip install --no-deps gan-face-generate==1.1.1>/gan_face_generate/weights.tar"])
        checkpoint = torch.load(paths[0], map_location="cpu", weights_only=True)
        net = Generator(ngpu=0, nc=3, nz=LATENT, ngf=FEATURES)
        net.load_state_dict(checkpoint["netG_state_dict"])
        return net.eval()

    def faces(self) -> np.ndarray:
        """(n, 64, 64, 3) uint8 RGB: the pool's faces, in order."""
        import torch

        net = self._load()
        rng = torch.Generator().manual_seed(self.seed)
        parts, done = [], 0
        with torch.inference_mode(), progress(None, f"pool {self.name}: generate", total=self.n) as bar:
            while done < self.n:
                # Always draw a full batch: face i's latent then depends only on (seed, i).
                z = torch.randn(self.batch_size, LATENT, 1, 1, generator=rng)
                x = net(z)[: self.n - done]
                parts.append(((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy())
                done += len(x)
                bar.update(len(x))
        return np.concatenate(parts)

    def file_name(self, index: int) -> str:
        return f"{PREFIX}{index:05d}.png"

    def generate(self) -> dict:
        """Writes the n faces to `path` (removing images of a larger earlier pool)."""
        faces = self.faces()
        self.path.mkdir(parents=True, exist_ok=True)
        names = {self.file_name(i) for i in range(self.n)}
        for stale in self.path.glob(f"{PREFIX}*.png"):
            if stale.name not in names:
                stale.unlink()
        for i, face in enumerate(progress(faces, f"pool {self.name}: write", unit="image")):
            resultsio.write_png(face, self.path / self.file_name(i))
        log.info("pool %s: %d DCGAN faces (seed %d) -> %s", self.name, self.n, self.seed, self.path)
        weights = self.weights()[0]
        return {"n": self.n, "seed": self.seed, "batch_size": self.batch_size, "path": str(self.path),
                "weights": {"path": str(weights), "sha256": resultsio.sha256_file(weights)}}
