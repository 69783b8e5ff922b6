"""A frozen TensorFlow FaceNet graph (.pb) read without TensorFlow.

The GraphDef protobuf is parsed with message classes built at run time from the few fields
that matter (node name, op, inputs, attrs; tensor dtype, shape, content), so neither
TensorFlow nor its generated protos are needed. Two uses:
- `frozen_facenet_state_dict`: the constants -> the state dict of deepface's PyTorch
  InceptionResNetV1. The graph has each batch norm folded into its convolution (weights
  scaled, `Conv2D_bn_offset` added); the PyTorch ConvBn reproduces that exactly with
  running_mean 0 and running_var 1 - eps.
- `GraphRunner`: executes the graph op by op with torch.nn.functional, an independent
  reference that the converted model must match before it is installed.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import numpy as np

TF_DTYPES = {1: np.float32, 3: np.int32, 9: np.int64}
_SCOPE = re.compile(r"InceptionResnetV1/(?:Repeat(?:_\d)?/)?(?P<scope>.+)/(?P<kind>weights|biases|Conv2D_bn_offset)")


@lru_cache(maxsize=1)
def graph_def_class():
    """A GraphDef message class holding only the fields this module reads."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    opt, rep = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    fd = descriptor_pb2.FileDescriptorProto(name="bench_tf_graph_subset.proto", package="benchtf", syntax="proto3")

    def message(name, fields, map_entry=False):
        m = fd.message_type.add(name=name)
        for fname, number, ftype, label, type_name in fields:
            f = m.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                f.type_name = f".benchtf.{type_name}"
        if map_entry:
            m.options.map_entry = True

    # Field numbers as in tensorflow/core/framework/{graph,node_def,attr_value,tensor,tensor_shape}.proto
    message("Dim", [("size", 1, F.TYPE_INT64, opt, None)])
    message("Shape", [("dim", 2, F.TYPE_MESSAGE, rep, "Dim")])
    message("Tensor", [("dtype", 1, F.TYPE_INT32, opt, None), ("tensor_shape", 2, F.TYPE_MESSAGE, opt, "Shape"),
                       ("tensor_content", 4, F.TYPE_BYTES, opt, None), ("float_val", 5, F.TYPE_FLOAT, rep, None),
                       ("int_val", 7, F.TYPE_INT32, rep, None), ("int64_val", 10, F.TYPE_INT64, rep, None)])
    message("ListValue", [("s", 2, F.TYPE_BYTES, rep, None), ("i", 3, F.TYPE_INT64, rep, None)])
    message("AttrValue", [("list", 1, F.TYPE_MESSAGE, opt, "ListValue"), ("s", 2, F.TYPE_BYTES, opt, None),
                          ("i", 3, F.TYPE_INT64, opt, None), ("f", 4, F.TYPE_FLOAT, opt, None),
                          ("tensor", 8, F.TYPE_MESSAGE, opt, "Tensor")])
    message("AttrEntry", [("key", 1, F.TYPE_STRING, opt, None), ("value", 2, F.TYPE_MESSAGE, opt, "AttrValue")], map_entry=True)
    message("NodeDef", [("name", 1, F.TYPE_STRING, opt, None), ("op", 2, F.TYPE_STRING, opt, None),
                        ("input", 3, F.TYPE_STRING, rep, None), ("attr", 5, F.TYPE_MESSAGE, rep, "AttrEntry")])
    message("GraphDef", [("node", 1, F.TYPE_MESSAGE, rep, "NodeDef")])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("benchtf.GraphDef"))


def read_graph(path: Path):
    graph = graph_def_class()()
    graph.ParseFromString(Path(path).read_bytes())
    return graph


def tensor_value(tensor) -> np.ndarray:
    dtype = TF_DTYPES.get(tensor.dtype)
    if dtype is None:
        raise ValueError(f"unsupported TensorFlow dtype {tensor.dtype}")
    shape = tuple(d.size for d in tensor.tensor_shape.dim)
    if tensor.tensor_content:
        return np.frombuffer(tensor.tensor_content, dtype=dtype).reshape(shape).copy()
    values = list(tensor.float_val) or list(tensor.int_val) or list(tensor.int64_val)
    out = np.empty(shape, dtype=dtype)
    out[...] = values[0] if len(values) == 1 else np.asarray(values, dtype=dtype).reshape(shape)
    return out


def constants(graph) -> dict[str, np.ndarray]:
    return {n.name: tensor_value(n.attr["value"].tensor) for n in graph.node if n.op == "Const"}


def keras_layer_name(scope: str) -> str:
    """TF scope `block35_2/Branch_1/Conv2d_0b_3x3` -> Keras layer `Block35_2_Branch_1_Conv2d_0b_3x3`
    (the final, unrepeated `Block8` is the sixth block8)."""
    scope = re.sub(r"^block(\d+)_(\d+)", lambda m: f"Block{m[1]}_{m[2]}", scope)
    scope = re.sub(r"^Block8/", "Block8_6/", scope)
    return scope.replace("/", "_")


def frozen_facenet_state_dict(path: Path, dimension: int = 512) -> dict:
    """deepface's PyTorch InceptionResNetV1 state dict from Sandberg's frozen graph."""
    import torch
    from deepface.models.facial_recognition.pytorch.Facenet import BN_EPS, InceptionResNetV1

    from bench.weights.facenet_keras import module_names

    const = constants(read_graph(path))
    layers: dict[str, dict[str, np.ndarray]] = {}
    for name, value in const.items():
        m = _SCOPE.fullmatch(name)
        if m and m["scope"] != "Bottleneck":  # the dense layer is read below, unfolded
            layers.setdefault(keras_layer_name(m["scope"]), {})[m["kind"]] = value
    bottleneck = {k: const[f"InceptionResnetV1/Bottleneck/BatchNorm/{k}"] for k in ("beta", "moving_mean", "moving_variance", "Const")}
    state = InceptionResNetV1(dimension=dimension).state_dict()
    filled = set()

    def put(key, value):
        value = np.ascontiguousarray(value, dtype=np.float32)
        if tuple(state[key].shape) != value.shape:
            raise ValueError(f"{key}: graph gives {value.shape}, PyTorch wants {tuple(state[key].shape)}")
        state[key] = torch.from_numpy(value)
        filled.add(key)

    names = module_names(layers)
    for layer, prefix in names.items():
        w = layers[layer]
        put(f"{prefix}.weight" if prefix.endswith(".up") else f"{prefix}.conv.weight", w["weights"].transpose(3, 2, 0, 1))
        if prefix.endswith(".up"):
            put(f"{prefix}.bias", w["biases"])
        else:  # folded batch norm: y = conv(x) + offset
            put(f"{prefix}.bn.bias", w["Conv2D_bn_offset"])
            put(f"{prefix}.bn.running_mean", np.zeros_like(w["Conv2D_bn_offset"]))
            put(f"{prefix}.bn.running_var", np.full_like(w["Conv2D_bn_offset"], 1.0 - BN_EPS))
    if not np.allclose(bottleneck["Const"], 1.0):
        raise ValueError("the bottleneck batch norm has a learned scale; deepface's client fixes it to 1")
    put("bottleneck.weight", const["InceptionResnetV1/Bottleneck/weights"].T)
    put("bottleneck_bn.bias", bottleneck["beta"])
    put("bottleneck_bn.running_mean", bottleneck["moving_mean"])
    put("bottleneck_bn.running_var", bottleneck["moving_variance"])
    missing = [k for k in state if k not in filled and not k.endswith(("num_batches_tracked", "bn.weight"))]
    if missing:
        raise ValueError(f"the graph leaves {len(missing)} PyTorch tensors unset, e.g. {missing[:3]}")
    return state


class GraphRunner:
    """Runs the frozen graph op by op (NHWC, as TensorFlow would) with torch.nn.functional."""

    def __init__(self, path: Path):
        self.graph = read_graph(path)
        self.nodes = {n.name: n for n in self.graph.node}
        self.const = constants(self.graph)

    def __call__(self, nhwc: np.ndarray, output: str = "InceptionResnetV1/Bottleneck/BatchNorm/Reshape_1") -> np.ndarray:
        import torch

        values = {"input": torch.from_numpy(np.ascontiguousarray(nhwc, dtype=np.float32))}
        with torch.no_grad():
            return self._eval(output, values).numpy()

    def _eval(self, name: str, values: dict):
        import torch
        import torch.nn.functional as fn

        name = name.split(":")[0]
        if name in values:
            return values[name]
        if name in self.const:
            return torch.from_numpy(self.const[name])
        node = self.nodes[name]
        args = [self._eval(i, values) for i in node.input if not i.startswith("^")]
        op, attr = node.op, node.attr
        if op == "Conv2D":
            x, w = args[0].permute(0, 3, 1, 2), args[1].permute(3, 2, 0, 1)
            stride = list(attr["strides"].list.i)[1]
            pad = (w.shape[2] // 2, w.shape[3] // 2) if attr["padding"].s == b"SAME" else 0
            if attr["padding"].s == b"SAME" and stride != 1:
                raise NotImplementedError("SAME padding with stride > 1")
            out = fn.conv2d(x, w, stride=stride, padding=pad).permute(0, 2, 3, 1)
        elif op in ("BiasAdd", "Add"):
            out = args[0] + args[1]
        elif op == "Mul":
            out = args[0] * args[1]
        elif op == "Relu":
            out = torch.relu(args[0])
        elif op == "ConcatV2":
            out = torch.cat(args[:-1], dim=int(args[-1]))
        elif op in ("MaxPool", "AvgPool"):
            if attr["padding"].s != b"VALID":
                raise NotImplementedError(f"{op} with {attr['padding'].s} padding")
            k, s = list(attr["ksize"].list.i)[1], list(attr["strides"].list.i)[1]
            pool = fn.max_pool2d if op == "MaxPool" else fn.avg_pool2d
            out = pool(args[0].permute(0, 3, 1, 2), k, s).permute(0, 2, 3, 1)
        elif op == "Reshape":
            # the frozen graph fixes the batch at 1: keep ours, let the last axis take the rest
            shape = [int(v) for v in args[1]]
            shape[0], shape[-1] = args[0].shape[0], -1
            out = args[0].reshape(shape)
        elif op == "MatMul":
            out = args[0] @ args[1]
        elif op == "FusedBatchNorm":
            x, gamma, beta, mean, var = args
            out = (x - mean) / torch.sqrt(var + attr["epsilon"].f) * gamma + beta
        else:
            raise NotImplementedError(f"op {op} ({name})")
        values[name] = out
        return out
