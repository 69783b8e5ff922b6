"""The inswapper and SimSwap adapters, run end to end on TINY ONNX files written here with
the real exports' input/output names, shapes and dtypes (and inswapper's trailing `emap`
initializer), so insightface's own INSwapper and ArcFaceONNX classes load and run them.

Each tiny swapper paints its whole crop one colour that depends on the identity vector:
base + 0.2 * tanh(identity @ W). So a test can see that the crop was pasted back (the face
takes that colour), where (nowhere else), in which channel order, and that the identity
face actually reached the model (two identities give two colours).
"""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from bench.align import ARCFACE_TEMPLATE
from bench.errors import BenchError, WeightsNotFound
from bench.generators.base import Face, SwapFailed
from bench.generators.inswapper import InSwapper
from bench.generators.paste import align_crop, box_mask, paste_back, template_points
from bench.generators.simswap import SimSwap
from bench.registry import GENERATORS

BASE_RGB = np.array([0.05, 0.85, 0.45], np.float32)  # R low, G high, B middle: order shows
SPREAD = 0.2  # identity moves each channel by at most this
OPSET = [helper.make_opsetid("", 17)]


def _save(graph, path) -> str:
    model = helper.make_model(graph, opset_imports=OPSET, ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path)


def _const(name, array):
    return numpy_helper.from_array(np.asarray(array, dtype=np.float32), name)


def tiny_arcface(path, seed=1) -> str:
    """112x112 RGB -> 512-d: global mean colour through a random linear map."""
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("GlobalAveragePool", ["data"], ["pooled"], name="pool"),
        helper.make_node("Flatten", ["pooled"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["fc1"], name="fc"),
    ]
    graph = helper.make_graph(
        nodes, "tiny_arcface",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 112, 112])],
        [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, [1, 512])],
        [_const("fc_w", rng.normal(size=(3, 512))), _const("fc_b", rng.normal(size=512) * 0.1)],
    )
    return _save(graph, path)


def tiny_swapper(path, size: int, emap: bool, seed=2) -> str:
    """Inputs target (1,3,S,S) and source (1,512) -> output (1,3,S,S) in [0, 1]: the crop
    filled with base + SPREAD * tanh(source @ W). With `emap`, a trailing 512x512
    initializer that insightface's INSwapper reads as graph.initializer[-1]."""
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("MatMul", ["source", "w"], ["proj"], name="proj"),
        helper.make_node("Tanh", ["proj"], ["squashed"], name="squash"),
        helper.make_node("Mul", ["squashed", "spread"], ["shift"], name="scale_shift"),
        helper.make_node("Add", ["shift", "base"], ["colour"], name="add_base"),
        helper.make_node("Reshape", ["colour", "shape4"], ["colour4"], name="to_nchw"),
        helper.make_node("Mul", ["target", "zero"], ["blank"], name="blank"),  # keeps target's shape
        helper.make_node("Add", ["blank", "colour4"], ["output"], name="paint"),
    ]
    inits = [
        _const("w", rng.normal(size=(512, 3)) * 2.0),
        _const("spread", [SPREAD]),
        _const("base", BASE_RGB[None]),
        numpy_helper.from_array(np.array([1, 3, 1, 1], np.int64), "shape4"),
        _const("zero", np.zeros((1, 3, 1, 1))),
    ]
    if emap:
        q, _ = np.linalg.qr(rng.normal(size=(512, 512)))
        inits.append(_const("emap", q))  # last, as in inswapper_128.onnx
    graph = helper.make_graph(
        nodes, "tiny_swapper",
        [helper.make_tensor_value_info("target", TensorProto.FLOAT, [1, 3, size, size]),
         helper.make_tensor_value_info("source", TensorProto.FLOAT, [1, 512])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, size, size])],
        inits,
    )
    return _save(graph, path)


def tiny_converter(path, seed=3) -> str:
    """input (1,512) -> output (1,512): a random permutation with signs."""
    rng = np.random.default_rng(seed)
    matrix = np.eye(512)[rng.permutation(512)] * rng.choice([-1.0, 1.0], size=512)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "m"], ["output"], name="convert")], "tiny_converter",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 512])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 512])],
        [_const("m", matrix)],
    )
    return _save(graph, path)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_onnx")
    return {
        "arcface": tiny_arcface(root / "w600k_r50.onnx"),
        "inswapper": tiny_swapper(root / "inswapper_128.onnx", 128, emap=True),
        "simswap": tiny_swapper(root / "simswap_256.onnx", 256, emap=False),
        "simswap512": tiny_swapper(root / "simswap_512_unofficial.onnx", 512, emap=False),
        "converter": tiny_converter(root / "arcface_converter_w600k_r50_simswap.onnx"),
    }


# A textured photo with one face whose five landmarks are the ArcFace template, scaled 1.5x.
CENTRE = np.array([200.0, 180.0])
LANDMARKS = ((ARCFACE_TEMPLATE - 56.0) * 1.5 + CENTRE).astype(np.float32)
PHOTO_FACE = Face(box=np.r_[CENTRE - 60, CENTRE + 60].astype(np.float32), landmarks=LANDMARKS)
FAR = 130  # pixels farther than this from CENTRE (either axis) lie outside any face crop


def photo() -> np.ndarray:
    return np.random.default_rng(0).integers(60, 200, (360, 420, 3), dtype=np.uint8)


def identity_image(rgb) -> tuple[np.ndarray, Face]:
    """A 112x112 pool face of one flat colour, landmarks on the ArcFace template."""
    image = np.full((112, 112, 3), rgb, np.uint8)
    return image, Face(box=np.array([0, 0, 112, 112], np.float32), landmarks=ARCFACE_TEMPLATE.copy())


RED, BLUE = identity_image((220, 30, 30)), identity_image((30, 30, 220))


def far_pixels(image):
    keep = np.ones(image.shape[:2], bool)
    y, x = CENTRE[1].astype(int), CENTRE[0].astype(int)
    keep[y - FAR:y + FAR, x - FAR:x + FAR] = False
    return image[keep]


def centre_colour(image) -> np.ndarray:
    """Mean colour of the middle of the face (between the eyes and the mouth)."""
    y, x = int(CENTRE[1]), int(CENTRE[0])
    patch = image[y - 15:y + 15, x - 15:x + 15].reshape(-1, 3).astype(float)
    assert patch.std(axis=0).max() < 2.0, "the face centre is not the tiny net's flat colour"
    return patch.mean(axis=0)


def check_swap(generator, identity=RED) -> np.ndarray:
    original = photo()
    result = generator.swap(original, PHOTO_FACE, identity[0], identity[1])
    assert result.shape == original.shape and result.dtype == np.uint8
    np.testing.assert_array_equal(far_pixels(result), far_pixels(original))
    colour = centre_colour(result)
    low, high = (BASE_RGB - SPREAD) * 255 - 2, (BASE_RGB + SPREAD) * 255 + 2
    assert np.all(colour >= low) and np.all(colour <= high), colour  # the net's RGB, in order
    return colour


def build(name, **paths):
    """The real conf/generator/<name>.yaml with its weight paths pointed at tiny files."""
    node = GENERATORS.config(name)
    for key, value in paths.items():
        node[key] = [value]
    return GENERATORS.build(node, name=name)


def test_inswapper_runs_insightfaces_own_class_end_to_end(tiny):
    from insightface.model_zoo.inswapper import INSwapper as InsightINSwapper

    generator = build("inswapper", model_paths=tiny["inswapper"], recognizer_paths=tiny["arcface"])
    red = check_swap(generator, RED)
    assert isinstance(generator._swapper, InsightINSwapper)
    blue = check_swap(generator, BLUE)
    assert np.abs(red - blue).max() > 5, "the identity face did not reach the swapper"


@pytest.mark.parametrize("name", ["simswap", "simswap512"])
def test_simswap_configs_run_end_to_end(tiny, name):
    generator = build(
        name, model_paths=tiny[name], recognizer_paths=tiny["arcface"], converter_paths=tiny["converter"]
    )
    red, blue = check_swap(generator, RED), check_swap(generator, BLUE)
    assert np.abs(red - blue).max() > 5, "the identity face did not reach the swapper"


def test_simswap_converter_is_applied(tiny):
    common = dict(model_paths=[tiny["simswap"]], recognizer_paths=[tiny["arcface"]], crop_size=256)
    with_converter = SimSwap(converter_paths=[tiny["converter"]], **common)
    without = SimSwap(converter_paths=[], **common)
    assert np.abs(check_swap(with_converter) - check_swap(without)).max() > 5


def test_simswap_swaps_every_face_of_a_photo_in_turn(tiny):
    generator = SimSwap([tiny["simswap"]], [tiny["arcface"]], [tiny["converter"]])
    faces = [Face(PHOTO_FACE.box + (dx, 0, dx, 0), PHOTO_FACE.landmarks + (dx, 0)) for dx in (-100, 120)]
    image = np.random.default_rng(0).integers(60, 200, (360, 640, 3), dtype=np.uint8)
    for face in faces:
        image = generator.swap(image, face, *RED)
    for face in faces:
        x, y = face.landmarks[2].astype(int)  # nose tip
        assert abs(int(image[y, x, 1]) - BASE_RGB[1] * 255) <= SPREAD * 255 + 2


@pytest.mark.parametrize("cls", ["inswapper", "simswap"])
def test_bad_landmarks_raise_swap_failed(tiny, cls):
    generator = (
        InSwapper([tiny["inswapper"]], [tiny["arcface"]]) if cls == "inswapper"
        else SimSwap([tiny["simswap"]], [tiny["arcface"]], [tiny["converter"]])
    )
    bad = Face(PHOTO_FACE.box, np.full((5, 2), np.nan, np.float32))
    with pytest.raises(SwapFailed):
        generator.swap(photo(), bad, *RED)
    with pytest.raises(SwapFailed):
        generator.swap(photo(), PHOTO_FACE, RED[0], Face(RED[1].box, np.zeros((5, 2), np.float32)))


@pytest.mark.parametrize("name", ["inswapper", "simswap", "simswap512"])
def test_missing_weights_name_every_file(tmp_path, monkeypatch, name):
    monkeypatch.setenv("BENCH_SHARED", str(tmp_path / "absent"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("INSIGHTFACE_HOME", raising=False)
    generator = GENERATORS.build(name)
    with pytest.raises(WeightsNotFound, match=r"weights not found at \$BENCH_SHARED/.*\(ArcFace recognizer\)") as error:
        generator.prepare()
    assert all("absent" in c or str(tmp_path) in c for c in error.value.candidates)


def test_simswap_refuses_a_model_of_another_crop_size(tiny):
    generator = SimSwap([tiny["simswap"]], [tiny["arcface"]], [tiny["converter"]], crop_size=224)
    with pytest.raises(BenchError, match="crop_size is 224"):
        generator.prepare()


def test_simswap_refuses_wrong_input_names(tiny):
    generator = SimSwap([tiny["simswap"]], [tiny["arcface"]], input_names={"source": "source_embedding"})
    with pytest.raises(BenchError, match="no input 'source_embedding'"):
        generator.prepare()


def test_inswapper_refuses_a_model_that_is_not_inswapper(tiny):
    with pytest.raises(BenchError, match="not an inswapper model"):
        InSwapper([tiny["arcface"]], [tiny["arcface"]]).prepare()


@pytest.mark.parametrize("name", ["fsgan", "ftgan", "simswap_official"])
def test_unavailable_generators_say_how_to_add_them(name):
    from bench.generators.unavailable import ModelNotInstalled

    generator = GENERATORS.build(name)
    with pytest.raises(ModelNotInstalled, match=r"^not installed: .*Get it: .*To add it: ") as error:
        generator.prepare()
    assert isinstance(error.value, BenchError)


def test_paste_back_changes_only_the_crop_footprint():
    image = photo()
    crop, matrix = align_crop(image, LANDMARKS, "arcface_112_v1", 256)
    assert crop.shape == (256, 256, 3)
    painted = np.full_like(crop, 255)
    result = paste_back(image, painted, matrix, box_mask(256))
    np.testing.assert_array_equal(far_pixels(result), far_pixels(image))
    assert (result[int(CENTRE[1]), int(CENTRE[0])] == 255).all()


def test_aligned_crop_puts_the_landmarks_on_the_template():
    _, matrix = align_crop(photo(), LANDMARKS, "arcface_112_v2", 112)
    crop_points = LANDMARKS @ matrix[:, :2].T + matrix[:, 2]
    np.testing.assert_allclose(crop_points, template_points("arcface_112_v2", 112), atol=0.05)


def test_box_mask_is_zero_at_the_border_and_one_inside():
    mask = box_mask(128, feather=0.3)
    assert mask[0].max() == 0 and mask[:, -1].max() == 0
    assert mask[64, 64] == pytest.approx(1.0, abs=1e-3)
