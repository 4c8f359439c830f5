"""tflite-runtime Interpreter, model from a file: 2 threads (XNNPACK delegate), 3 inferences through
set_tensor/invoke/get_tensor.
Usage: python tflite_file.py MODELS_DIR OUT_DIR"""

import sys
from pathlib import Path

import numpy as np
from tflite_runtime.interpreter import Interpreter

it = Interpreter(model_path=str(Path(sys.argv[1]) / "mlp.tflite"), num_threads=2)
it.allocate_tensors()
inp, outp = it.get_input_details()[0], it.get_output_details()[0]
total = 0.0
for i in range(3):
    it.set_tensor(inp["index"], np.full(inp["shape"], 0.01 * (i + 1), dtype=np.float32))
    it.invoke()
    total += float(it.get_tensor(outp["index"]).sum())
print("sum", total)
