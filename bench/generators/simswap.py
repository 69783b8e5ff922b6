"""SimSwap (Chen et al., ACM MM 2020) through its ONNX exports, run with onnxruntime.

The exports people run (facefusion-assets' simswap_256.onnx and simswap_512_unofficial.onnx)
take two inputs, matched here by name:
    target  (1, 3, S, S) float32: the face to change, aligned to `template`, RGB in [0, 1]
            normalised by `input_mean` / `input_std`;
    source  (1, 512) float32: the identity, an L2-normalised ArcFace vector in SimSwap's own
            ArcFace space: the w600k_r50 embedding of the identity face mapped by an
            embedding converter ONNX (arcface_converter_w600k_r50_simswap.onnx);
and give (1, 3, S, S) RGB in [0, 1] (after `output_mean` / `output_std`).
The swapped crop is pasted back through a feathered square mask (facefusion's box mask).

Every one of these choices is a config value (conf/generator/simswap*.yaml), checked
against the model's declared inputs when it loads, never guessed from tensor shapes.
SimSwap's official PyTorch checkpoints are not loaded here: see conf/generator/simswap_official.yaml.
"""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from bench.errors import BenchError
from bench.generators.base import Face, Generator, SwapFailed
from bench.generators.identity import CPU, check_landmarks, embedding_size, find_all, identity, load_arcface
from bench.generators.paste import TEMPLATES, align_crop, box_mask, paste_back

log = logging.getLogger(__name__)


class SimSwap(Generator):
    """SimSwap ONNX export + ArcFace identity (+ optional embedding converter)."""

    def __init__(
        self,
        model_paths,
        recognizer_paths,
        converter_paths=None,
        crop_size: int = 256,
        template: str = "arcface_112_v1",
        input_mean=(0.485, 0.456, 0.406),
        input_std=(0.229, 0.224, 0.225),
        output_mean=(0.0, 0.0, 0.0),
        output_std=(1.0, 1.0, 1.0),
        input_names=None,
        mask_feather: float = 0.3,
        mask_padding: float = 0.0,
    ) -> None:
        """
        Args:
            model_paths: candidates for the SimSwap ONNX file; the first existing is used.
            recognizer_paths: candidates for the ArcFace recognition ONNX (insightface's
                loader) that embeds the identity face.
            converter_paths: candidates for an embedding converter ONNX (512 -> 512) from
                that ArcFace's space into SimSwap's; empty or None: no conversion.
            crop_size: side of the aligned crop the model takes.
            template: five-point alignment template (bench.generators.paste.TEMPLATES).
            input_mean, input_std: RGB normalisation of the [0, 1] crop.
            output_mean, output_std: the model's output times std plus mean is RGB in [0, 1].
            input_names: {"target": name, "source": name} of the model's two inputs.
            mask_feather, mask_padding: the paste-back mask (paste.box_mask).
        """
        super().__init__()
        if template not in TEMPLATES:
            raise ValueError(f"unknown template {template!r}; known: {', '.join(TEMPLATES)}")
        self.model_paths = [str(p) for p in model_paths]
        self.recognizer_paths = [str(p) for p in recognizer_paths]
        self.converter_paths = [str(p) for p in (converter_paths or [])]
        self.crop_size = int(crop_size)
        self.template = template
        self.input_mean = np.asarray(input_mean, dtype=np.float32).reshape(3)
        self.input_std = np.asarray(input_std, dtype=np.float32).reshape(3)
        self.output_mean = np.asarray(output_mean, dtype=np.float32).reshape(3)
        self.output_std = np.asarray(output_std, dtype=np.float32).reshape(3)
        self.input_names = {"target": "target", "source": "source", **dict(input_names or {})}
        self.mask_feather = float(mask_feather)
        self.mask_padding = float(mask_padding)

    def weights(self) -> list[Path]:
        return [Path(p).expanduser() for p in self.model_paths + self.recognizer_paths + self.converter_paths]

    def _load(self) -> None:
        import onnxruntime

        files = {"SimSwap ONNX": self.model_paths, "ArcFace recognizer": self.recognizer_paths}
        if self.converter_paths:
            files["embedding converter"] = self.converter_paths
        found = find_all("SimSwap", files)
        self._session = onnxruntime.InferenceSession(str(found[0]), providers=CPU)
        self._check_inputs(found[0])
        self._arcface = load_arcface(found[1])
        self._converter = onnxruntime.InferenceSession(str(found[2]), providers=CPU) if len(found) > 2 else None
        self._check_identity_size(found)
        self._mask = box_mask(self.crop_size, self.mask_feather, self.mask_padding)
        log.info("SimSwap: %s", ", ".join(str(p) for p in found))

    def _check_inputs(self, path: Path) -> None:
        """The configured input names and crop size must be the model's own."""
        inputs = {i.name: i.shape for i in self._session.get_inputs()}
        for role, name in self.input_names.items():
            if name not in inputs:
                raise BenchError(f"{path} has no input {name!r} ({role}); its inputs: {sorted(inputs)}")
        spatial = inputs[self.input_names["target"]][2:4]
        if any(isinstance(d, int) and d != self.crop_size for d in spatial):
            raise BenchError(f"{path} takes {spatial} crops but crop_size is {self.crop_size}")

    def _check_identity_size(self, found: list[Path]) -> None:
        source_shape = {i.name: i.shape for i in self._session.get_inputs()}[self.input_names["source"]]
        wanted = source_shape[-1] if isinstance(source_shape[-1], int) else None
        provider = self._converter.get_outputs()[0].shape[-1] if self._converter else embedding_size(self._arcface)
        if wanted is not None and isinstance(provider, int) and provider != wanted:
            raise BenchError(f"{found[0]} takes {wanted}-d identities but {found[-1]} gives {provider}-d ones")

    def _latent(self, target: np.ndarray, target_face: Face) -> np.ndarray:
        """The (1, 512) float32 identity input: ArcFace embedding, converted, L2-normalised."""
        embedding = identity(self._arcface, target, target_face).embedding.reshape(1, -1).astype(np.float32)
        if self._converter is not None:
            name = self._converter.get_inputs()[0].name
            embedding = self._converter.run(None, {name: embedding})[0].reshape(1, -1).astype(np.float32)
        norm = float(np.linalg.norm(embedding))
        if not np.isfinite(norm) or norm == 0:
            raise SwapFailed("the identity vector is zero or not finite")
        return embedding / norm

    def _swap(self, photo: np.ndarray, face: Face, target: np.ndarray, target_face: Face) -> np.ndarray:
        latent = self._latent(target, target_face)
        try:
            crop, matrix = align_crop(photo, check_landmarks(face, "photo"), self.template, self.crop_size)
        except ValueError as error:
            raise SwapFailed(str(error)) from error
        blob = (crop.astype(np.float32) / 255.0 - self.input_mean) / self.input_std
        blob = np.ascontiguousarray(blob.transpose(2, 0, 1)[None], dtype=np.float32)
        output = self._session.run(None, {self.input_names["target"]: blob, self.input_names["source"]: latent})[0]
        if output.shape != (1, 3, self.crop_size, self.crop_size):
            raise SwapFailed(f"SimSwap returned {output.shape}, expected (1, 3, {self.crop_size}, {self.crop_size})")
        rgb = output[0].transpose(1, 2, 0) * self.output_std + self.output_mean
        swapped = np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
        try:
            return paste_back(photo, swapped, matrix, self._mask)
        except (ValueError, cv2.error) as error:
            raise SwapFailed(f"SimSwap could not paste this face back: {error}") from error
