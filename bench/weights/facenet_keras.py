"""Keras FaceNet (.h5, Hiroki Taniai's layer names, as in deepface's TensorFlow client) ->
the state dict of deepface's PyTorch `InceptionResNetV1`, read with h5py (no TensorFlow).

Keras layer `Block35_3_Branch_2_Conv2d_0b_3x3` is `block35.2.branch_2.1.conv` in PyTorch:
the codes within one branch (0a < 0b < 0c < 1a) sort in execution order, so a branch's
n-th code is the n-th module of its nn.Sequential. Batch norms have no gamma (slim's
scale=False): PyTorch's bn.weight stays 1, as deepface's client fixes it.
"""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import numpy as np

_BLOCK = re.compile(r"(?P<block>Block35|Block17|Block8)_(?P<index>\d+)_(?P<rest>.+)")
_MIXED = re.compile(r"(?P<block>Mixed_6a|Mixed_7a)_(?P<rest>.+)")
_BRANCH = re.compile(r"Branch_(?P<branch>\d)_Conv2d_(?:(?P<code>\d[a-z])_)?\d+x\d+")
_STEM = re.compile(r"Conv2d_\d[a-z]_\dx\d")


def read_h5_weights(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """{keras layer: {weight name (kernel, bias, beta, moving_mean, ...): array}}."""
    import h5py

    layers: dict[str, dict[str, np.ndarray]] = defaultdict(dict)
    with h5py.File(path, "r") as f:
        group = f["model_weights"] if "model_weights" in f else f

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                layer = name.split("/")[0]
                layers[layer][name.split("/")[-1].split(":")[0]] = np.asarray(obj)

        group.visititems(visit)
    return dict(layers)


def module_names(layers) -> dict[str, str]:
    """Keras conv/dense layer name (without _BatchNorm) -> PyTorch module prefix."""
    branches: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    names = {}
    for layer in layers:
        if layer.endswith("_BatchNorm"):
            continue
        if layer == "Bottleneck":
            names[layer] = "bottleneck"
            continue
        if _STEM.fullmatch(layer):
            names[layer] = layer.lower()
            continue
        m = _BLOCK.fullmatch(layer) or _MIXED.fullmatch(layer)
        if not m:
            continue  # input, activation, concatenate, lambda, pooling: no weights
        index = m.groupdict().get("index")
        base = m["block"].lower() + (f".{int(index) - 1}" if index else "")
        if m["rest"] == "Conv2d_1x1":
            names[layer] = f"{base}.up"
            continue
        b = _BRANCH.fullmatch(m["rest"])
        if not b:
            raise KeyError(f"unexpected Keras FaceNet layer {layer!r}")
        branches[(base, b["branch"])].append((b["code"] or "0a", layer))
    for (base, branch), members in branches.items():
        members.sort()
        for i, (_, layer) in enumerate(members):
            names[layer] = f"{base}.branch_{branch}" + (f".{i}" if len(members) > 1 else "")
    return names


def keras_facenet_state_dict(path: Path, dimension: int = 128) -> dict:
    """The state dict of deepface's PyTorch InceptionResNetV1(dimension) from a Keras .h5."""
    import torch
    from deepface.models.facial_recognition.pytorch.Facenet import InceptionResNetV1

    layers = read_h5_weights(path)
    state = InceptionResNetV1(dimension=dimension).state_dict()
    filled = set()

    def put(key: str, value: np.ndarray) -> None:
        if key not in state:
            raise KeyError(f"{key} is not in deepface's InceptionResNetV1")
        if tuple(state[key].shape) != value.shape:
            raise ValueError(f"{key}: Keras gives {value.shape}, PyTorch wants {tuple(state[key].shape)}")
        state[key] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
        filled.add(key)

    for layer, prefix in module_names(layers).items():
        w = layers[layer]
        if layer == "Bottleneck":
            put("bottleneck.weight", w["kernel"].T)
        elif prefix.endswith(".up"):
            put(f"{prefix}.weight", w["kernel"].transpose(3, 2, 0, 1))
            put(f"{prefix}.bias", w["bias"])
        else:
            put(f"{prefix}.conv.weight", w["kernel"].transpose(3, 2, 0, 1))
        bn = layers.get(f"{layer}_BatchNorm")
        if bn is not None:
            bn_prefix = "bottleneck_bn" if layer == "Bottleneck" else f"{prefix}.bn"
            put(f"{bn_prefix}.bias", bn["beta"])
            put(f"{bn_prefix}.running_mean", bn["moving_mean"])
            put(f"{bn_prefix}.running_var", bn["moving_variance"])
            if "gamma" in bn:
                put(f"{bn_prefix}.weight", bn["gamma"])
    missing = [k for k in state if k not in filled and not k.endswith((".num_batches_tracked", "bn.weight", "bottleneck_bn.weight"))]
    if missing:
        raise ValueError(f"the Keras file leaves {len(missing)} PyTorch tensors unset, e.g. {missing[:3]}")
    return state
