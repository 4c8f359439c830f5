"""ai-edge-litert Python Interpreter (the TFLite-compatible API), model from a file: 2 threads,
3 inferences by tensor index and 2 through the SignatureDef runner.
Usage: python litert_py_interp.py MODELS_DIR OUT_DIR"""

import sys
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

it = Interpreter(model_path=str(Path(sys.argv[1]) / "conv.tflite"), num_threads=2)
it.allocate_tensors()
inp, outp = it.get_input_details()[0], it.get_output_details()[0]
total = 0.0
for i in range(3):
    it.set_tensor(inp["index"], np.full(inp["shape"], 0.1 * (i + 1), dtype=np.float32))
    it.invoke()
    total += float(it.get_tensor(outp["index"]).sum())
runner = it.get_signature_runner()
for i in range(2):
    total += float(runner(x=np.full((1, 32, 32, 3), 0.2 * i, dtype=np.float32))["y"].sum())
print("sum", total)
