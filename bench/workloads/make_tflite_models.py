"""Build the TFLite flatbuffers the tflite-runtime and ai-edge-litert workloads run.

Runs in the litert venv: it uses the flatbuffers schema module that ai-edge-litert ships
(`ai_edge_litert.schema_py_generated`, generated from TFLite's schema.fbs) and its object API, so no
TensorFlow is needed.  Weights come from a fixed seed: the files are identical on every run.

mlp.tflite:  x[8,256] -> FULLY_CONNECTED(relu) -> FULLY_CONNECTED -> TANH -> SOFTMAX -> y[8,10]   (4 operators)
conv.tflite: x[1,32,32,3] -> CONV_2D(relu) -> MAX_POOL_2D -> CONV_2D(relu) -> AVERAGE_POOL_2D -> RESHAPE
             -> FULLY_CONNECTED -> SOFTMAX -> y[1,10]                                               (7 operators)
Each model has one SignatureDef ("serving_default"), which LiteRT's CompiledModel runs by index.
Usage: python make_tflite_models.py OUTDIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as fb

F32, I32 = fb.TensorType.FLOAT32, fb.TensorType.INT32


class Graph:
    """One subgraph under construction: tensors, constant buffers, operators, operator codes."""

    def __init__(self) -> None:
        self.model = fb.ModelT()
        self.model.version = 3
        self.model.description = "uk-depscan traced-workload model"
        self.model.buffers = [fb.BufferT()]  # buffer 0 is the empty sentinel every TFLite model has
        self.model.operatorCodes = []
        self.sub = fb.SubGraphT()
        self.sub.tensors, self.sub.operators, self.sub.name = [], [], "main"

    def tensor(self, name: str, shape: list[int], data: np.ndarray | None = None, ttype: int = F32) -> int:
        t = fb.TensorT()
        t.name, t.shape, t.type, t.buffer = name, shape, ttype, 0
        if data is not None:
            buf = fb.BufferT()
            buf.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), dtype=np.uint8)
            self.model.buffers.append(buf)
            t.buffer = len(self.model.buffers) - 1
        self.sub.tensors.append(t)
        return len(self.sub.tensors) - 1

    def op(self, code: int, inputs: list[int], outputs: list[int], opt_type: int = 0, options: object = None) -> None:
        codes = [c.builtinCode for c in self.model.operatorCodes]
        if code not in codes:
            oc = fb.OperatorCodeT()
            oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = code, min(code, 127), 1
            self.model.operatorCodes.append(oc)
            codes.append(code)
        o = fb.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = codes.index(code), inputs, outputs
        o.builtinOptionsType, o.builtinOptions = opt_type, options
        self.sub.operators.append(o)

    def finish(self, inputs: list[int], outputs: list[int]) -> bytes:
        self.sub.inputs, self.sub.outputs = inputs, outputs
        self.model.subgraphs = [self.sub]
        sig = fb.SignatureDefT()
        sig.signatureKey, sig.subgraphIndex = "serving_default", 0
        sig.inputs = [self._map(i) for i in inputs]
        sig.outputs = [self._map(i) for i in outputs]
        self.model.signatureDefs = [sig]
        builder = flatbuffers.Builder(1 << 20)
        builder.Finish(self.model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())

    def _map(self, index: int) -> fb.TensorMapT:
        m = fb.TensorMapT()
        m.name, m.tensorIndex = self.sub.tensors[index].name, index
        return m


def _fc(activation: int = fb.ActivationFunctionType.NONE) -> fb.FullyConnectedOptionsT:
    o = fb.FullyConnectedOptionsT()
    o.fusedActivationFunction = activation
    return o


def _conv(activation: int) -> fb.Conv2DOptionsT:
    o = fb.Conv2DOptionsT()
    o.padding, o.strideW, o.strideH, o.dilationWFactor, o.dilationHFactor = fb.Padding.SAME, 1, 1, 1, 1
    o.fusedActivationFunction = activation
    return o


def _pool(size: int) -> fb.Pool2DOptionsT:
    o = fb.Pool2DOptionsT()
    o.padding, o.strideW, o.strideH, o.filterWidth, o.filterHeight = fb.Padding.VALID, size, size, size, size
    return o


def _softmax() -> fb.SoftmaxOptionsT:
    o = fb.SoftmaxOptionsT()
    o.beta = 1.0
    return o


def mlp(rng: np.random.Generator) -> bytes:
    g, op, opt = Graph(), fb.BuiltinOperator, fb.BuiltinOptions
    f32 = np.float32
    x = g.tensor("x", [8, 256])
    w1 = g.tensor("w1", [512, 256], (rng.standard_normal((512, 256)) * 0.05).astype(f32))
    b1 = g.tensor("b1", [512], (rng.standard_normal(512) * 0.05).astype(f32))
    w2 = g.tensor("w2", [10, 512], (rng.standard_normal((10, 512)) * 0.05).astype(f32))
    b2 = g.tensor("b2", [10], (rng.standard_normal(10) * 0.05).astype(f32))
    h1, h2, h3, y = g.tensor("h1", [8, 512]), g.tensor("h2", [8, 10]), g.tensor("h3", [8, 10]), g.tensor("y", [8, 10])
    g.op(op.FULLY_CONNECTED, [x, w1, b1], [h1], opt.FullyConnectedOptions, _fc(fb.ActivationFunctionType.RELU))
    g.op(op.FULLY_CONNECTED, [h1, w2, b2], [h2], opt.FullyConnectedOptions, _fc())
    g.op(op.TANH, [h2], [h3])
    g.op(op.SOFTMAX, [h3], [y], opt.SoftmaxOptions, _softmax())
    return g.finish([x], [y])


def conv(rng: np.random.Generator) -> bytes:
    g, op, opt = Graph(), fb.BuiltinOperator, fb.BuiltinOptions
    f32, relu = np.float32, fb.ActivationFunctionType.RELU
    x = g.tensor("x", [1, 32, 32, 3])
    k1 = g.tensor("k1", [16, 3, 3, 3], (rng.standard_normal((16, 3, 3, 3)) * 0.2).astype(f32))  # OHWI
    c1 = g.tensor("c1", [16], (rng.standard_normal(16) * 0.1).astype(f32))
    k2 = g.tensor("k2", [32, 3, 3, 16], (rng.standard_normal((32, 3, 3, 16)) * 0.1).astype(f32))
    c2 = g.tensor("c2", [32], (rng.standard_normal(32) * 0.1).astype(f32))
    shape = g.tensor("shape", [2], np.array([1, 32], dtype=np.int32), I32)
    fw = g.tensor("fw", [10, 32], (rng.standard_normal((10, 32)) * 0.1).astype(f32))
    fbias = g.tensor("fb", [10], (rng.standard_normal(10) * 0.1).astype(f32))
    a1, a2 = g.tensor("a1", [1, 32, 32, 16]), g.tensor("a2", [1, 16, 16, 16])
    a3, a4 = g.tensor("a3", [1, 16, 16, 32]), g.tensor("a4", [1, 1, 1, 32])
    a5, a6, y = g.tensor("a5", [1, 32]), g.tensor("a6", [1, 10]), g.tensor("y", [1, 10])
    g.op(op.CONV_2D, [x, k1, c1], [a1], opt.Conv2DOptions, _conv(relu))
    g.op(op.MAX_POOL_2D, [a1], [a2], opt.Pool2DOptions, _pool(2))
    g.op(op.CONV_2D, [a2, k2, c2], [a3], opt.Conv2DOptions, _conv(relu))
    g.op(op.AVERAGE_POOL_2D, [a3], [a4], opt.Pool2DOptions, _pool(16))
    g.op(op.RESHAPE, [a4, shape], [a5])
    g.op(op.FULLY_CONNECTED, [a5, fw, fbias], [a6], opt.FullyConnectedOptions, _fc())
    g.op(op.SOFTMAX, [a6], [y], opt.SoftmaxOptions, _softmax())
    return g.finish([x], [y])


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    for name, build in (("mlp", mlp), ("conv", conv)):
        data = build(rng)
        (out / f"{name}.tflite").write_bytes(data)
        print(f"wrote {out / name}.tflite ({len(data)} bytes)")


if __name__ == "__main__":
    main()
