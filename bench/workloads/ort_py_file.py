"""onnxruntime Python API, model from a file: 2 intra-op threads, profiling on, the optimized graph saved
and loaded again, 3 + 2 inferences, the session kept alive 4 s (ORT's background work starts late).
Usage: python ort_py_file.py MODELS_DIR OUT_DIR"""

import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

models, out = Path(sys.argv[1]), Path(sys.argv[2])
so = ort.SessionOptions()
so.intra_op_num_threads = 2
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
so.enable_profiling = True
so.profile_file_prefix = str(out / "ort_py_profile")
so.optimized_model_filepath = str(out / "mlp.ort-optimized.onnx")
sess = ort.InferenceSession(str(models / "mlp.onnx"), so, providers=["CPUExecutionProvider"])
x = np.linspace(0, 1, 4 * 64, dtype=np.float32).reshape(4, 64)
for _ in range(3):
    y = sess.run(["y"], {"x": x})[0]
print("profile:", sess.end_profiling(), "sum", float(y.sum()))
so2 = ort.SessionOptions()
so2.intra_op_num_threads = 2
sess2 = ort.InferenceSession(so.optimized_model_filepath, so2, providers=["CPUExecutionProvider"])
for _ in range(2):
    y2 = sess2.run(None, {"x": x})[0]
print("reloaded sum", float(y2.sum()))
time.sleep(4)
