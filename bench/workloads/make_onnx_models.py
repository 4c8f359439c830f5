"""Build the two ONNX models the onnxruntime workloads run (run in the ort venv: needs `onnx`, `numpy`).

mlp.onnx:  x[N,64] -> MatMul -> Add -> Relu -> MatMul -> Add -> Softmax -> y[N,10]   (6 operators)
conv.onnx: x[N,3,32,32] -> Conv -> Relu -> MaxPool -> Conv -> Relu -> GlobalAveragePool -> Flatten -> Gemm
           -> y[N,10]                                                                 (8 operators)
Weights are drawn from a fixed seed, so the files are identical on every run.  Opset 17 / IR 8 are old
enough for any onnxruntime >= 1.14 and new enough for every operator used.
Usage: python make_onnx_models.py OUTDIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET, IR_VERSION = 17, 8


def _init(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(array.astype(np.float32), name)


def mlp(rng: np.random.Generator) -> onnx.ModelProto:
    inits = [
        _init("w1", rng.standard_normal((64, 256)) * 0.1),
        _init("b1", rng.standard_normal(256) * 0.1),
        _init("w2", rng.standard_normal((256, 10)) * 0.1),
        _init("b2", rng.standard_normal(10) * 0.1),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h1"]),
        helper.make_node("Add", ["h1", "b1"], ["h2"]),
        helper.make_node("Relu", ["h2"], ["h3"]),
        helper.make_node("MatMul", ["h3", "w2"], ["h4"]),
        helper.make_node("Add", ["h4", "b2"], ["h5"]),
        helper.make_node("Softmax", ["h5"], ["y"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)


def conv(rng: np.random.Generator) -> onnx.ModelProto:
    inits = [
        _init("c1w", rng.standard_normal((16, 3, 3, 3)) * 0.2),
        _init("c1b", rng.standard_normal(16) * 0.1),
        _init("c2w", rng.standard_normal((32, 16, 3, 3)) * 0.1),
        _init("c2b", rng.standard_normal(32) * 0.1),
        _init("fw", rng.standard_normal((10, 32)) * 0.1),
        _init("fb", rng.standard_normal(10) * 0.1),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "c1w", "c1b"], ["a1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a1"], ["a2"]),
        helper.make_node("MaxPool", ["a2"], ["a3"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["a3", "c2w", "c2b"], ["a4"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a4"], ["a5"]),
        helper.make_node("GlobalAveragePool", ["a5"], ["a6"]),
        helper.make_node("Flatten", ["a6"], ["a7"]),
        helper.make_node("Gemm", ["a7", "fw", "fb"], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(12)
    for name, build in (("mlp", mlp), ("conv", conv)):
        model = build(rng)
        onnx.checker.check_model(model, full_check=True)
        (out / f"{name}.onnx").write_bytes(model.SerializeToString())
        print(f"wrote {out / name}.onnx ({len(model.graph.node)} operators)")


if __name__ == "__main__":
    main()
