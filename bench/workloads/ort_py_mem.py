"""onnxruntime Python API, model from memory (bytes): 2 intra-op and 2 inter-op threads in parallel
execution mode, no memory arena, I/O binding and OrtValue inputs, profiling off, 3 inferences, the
session kept alive 4 s.
Usage: python ort_py_mem.py MODELS_DIR OUT_DIR"""

import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

models = Path(sys.argv[1])
so = ort.SessionOptions()
so.intra_op_num_threads = 2
so.inter_op_num_threads = 2
so.execution_mode = ort.ExecutionMode.ORT_PARALLEL
so.enable_cpu_mem_arena = False
so.enable_mem_pattern = False
sess = ort.InferenceSession((models / "conv.onnx").read_bytes(), so, providers=["CPUExecutionProvider"])
total = 0.0
for i in range(3):
    x = np.full((2, 3, 32, 32), 0.1 * (i + 1), dtype=np.float32)
    binding = sess.io_binding()
    binding.bind_ortvalue_input("x", ort.OrtValue.ortvalue_from_numpy(x))
    binding.bind_output("y")
    sess.run_with_iobinding(binding)
    total += float(binding.copy_outputs_to_cpu()[0].sum())
print("sum", total)
time.sleep(4)
