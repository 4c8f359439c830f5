"""ai-edge-litert Python CompiledModel API, model from memory (from_buffer): CPU with 2 threads,
input/output TensorBuffers, 3 inferences by signature index.
Usage: python litert_py_compiled.py MODELS_DIR OUT_DIR"""

import sys
from pathlib import Path

import numpy as np
from ai_edge_litert.compiled_model import CompiledModel, CpuOptions, Options

data = (Path(sys.argv[1]) / "mlp.tflite").read_bytes()
model = CompiledModel.from_buffer(data, options=Options(cpu_options=CpuOptions(num_threads=2)))
inputs, outputs = model.create_input_buffers(0), model.create_output_buffers(0)
total = 0.0
for i in range(3):
    inputs[0].write(np.full((8, 256), 0.01 * (i + 1), dtype=np.float32))
    model.run_by_index(0, inputs, outputs)
    total += float(outputs[0].read(80, np.float32).sum())
print("sum", total)
