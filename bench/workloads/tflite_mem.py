"""tflite-runtime Interpreter, model from memory (model_content), all tensors preserved, 2 threads,
3 inferences through the SignatureDef runner.
Usage: python tflite_mem.py MODELS_DIR OUT_DIR"""

import sys
from pathlib import Path

import numpy as np
from tflite_runtime.interpreter import Interpreter

content = (Path(sys.argv[1]) / "conv.tflite").read_bytes()
it = Interpreter(model_content=content, num_threads=2, experimental_preserve_all_tensors=True)
runner = it.get_signature_runner("serving_default")
total = 0.0
for i in range(3):
    total += float(runner(x=np.full((1, 32, 32, 3), 0.1 * (i + 1), dtype=np.float32))["y"].sum())
print("sum", total, "tensors", len(it.get_tensor_details()))
