"""The traced workloads: what each runs, in which virtual environment, and which part of the dev set it
belongs to.  The split is by workload (different programs doing different things), never by run:
for each runtime one workload is for tuning and another, doing something else, is kept aside.

Commands are argv lists relative to the repository root; {models}, {out}, {venv}, {site} and {bin} are
filled in by trace.py ({site} is the venv's site-packages, {bin} the directory of the compiled drivers).
"""

from __future__ import annotations

from dataclasses import dataclass

TUNING, KEPT_ASIDE = "tuning", "kept-aside"


@dataclass(frozen=True)
class Runtime:
    """A runtime's virtual environment and the package directories of its wheel inside site-packages."""

    venv: str
    wheel: str  # key of the extracted wheel: bench/wheels/x/<wheel> (bench/fetch_wheels.sh)
    packages: tuple[str, ...]


RUNTIMES = {
    "ort": Runtime("ort", "onnxruntime", ("onnxruntime/",)),
    "torch": Runtime("torch", "torch", ("torch/",)),
    "tflite": Runtime("tflite", "tflite", ("tflite_runtime/",)),
    "litert": Runtime("litert", "litert", ("ai_edge_litert/",)),
}


@dataclass(frozen=True)
class Workload:
    name: str
    runtime: str
    part: str
    argv: tuple[str, ...]
    what: str


PY = "{venv}/bin/python"
ORT_LIB = "{site}/onnxruntime/capi/libonnxruntime.so.1.31.1"
LITERT_LIB = "{site}/ai_edge_litert/libLiteRt.so"
W = "bench/workloads"

WORKLOADS = (
    Workload(
        "ort_c_file",
        "ort",
        TUNING,
        (
            "{bin}/ort_c_driver",
            ORT_LIB,
            "{models}/mlp.onnx",
            "--shape",
            "4,64",
            "--threads",
            "2",
            "--profile",
            "{out}/ort_c_profile",
            "--save-optimized",
            "{out}/mlp.c-optimized.onnx",
            "--runs",
            "3",
            "--linger",
            "4",
        ),
        "C API: MLP from a file, 2 intra-op threads, profiling on, optimized model saved and reloaded",
    ),
    Workload(
        "ort_c_mem",
        "ort",
        KEPT_ASIDE,
        (
            "{bin}/ort_c_driver",
            ORT_LIB,
            "{models}/conv.onnx",
            "--shape",
            "2,3,32,32",
            "--memory",
            "--threads",
            "2",
            "--inter",
            "2",
            "--parallel",
            "--no-arena",
            "--runs",
            "3",
            "--linger",
            "4",
        ),
        "C API: conv net from memory, 2 intra + 2 inter-op threads, parallel mode, no arena, profiling off",
    ),
    Workload(
        "ort_py_file",
        "ort",
        TUNING,
        (PY, f"{W}/ort_py_file.py", "{models}", "{out}"),
        "Python: MLP from a file, 2 threads, profiling on, optimized model saved and reloaded",
    ),
    Workload(
        "ort_py_mem",
        "ort",
        KEPT_ASIDE,
        (PY, f"{W}/ort_py_mem.py", "{models}", "{out}"),
        "Python: conv net from bytes, 2+2 threads, parallel mode, I/O binding, no arena",
    ),
    Workload(
        "torch_eager",
        "torch",
        TUNING,
        (PY, f"{W}/torch_eager.py", "{models}", "{out}"),
        "eager MLP, 2 threads, inference + one training step, save/load state_dict, profiler on",
    ),
    Workload(
        "torch_jit",
        "torch",
        KEPT_ASIDE,
        (PY, f"{W}/torch_jit.py", "{models}", "{out}"),
        "TorchScript conv net: script, freeze, save, load from file and memory, 2+2 threads",
    ),
    Workload(
        "tflite_file",
        "tflite",
        TUNING,
        (PY, f"{W}/tflite_file.py", "{models}", "{out}"),
        "Interpreter: MLP from a file, 2 threads, tensor-index API",
    ),
    Workload(
        "tflite_mem",
        "tflite",
        KEPT_ASIDE,
        (PY, f"{W}/tflite_mem.py", "{models}", "{out}"),
        "Interpreter: conv net from memory, 2 threads, all tensors preserved, signature runner",
    ),
    Workload(
        "litert_py_interp",
        "litert",
        TUNING,
        (PY, f"{W}/litert_py_interp.py", "{models}", "{out}"),
        "Python Interpreter: conv net from a file, 2 threads, tensor-index API and signature runner",
    ),
    Workload(
        "litert_py_compiled",
        "litert",
        KEPT_ASIDE,
        (PY, f"{W}/litert_py_compiled.py", "{models}", "{out}"),
        "Python CompiledModel: MLP from a buffer, CPU 2 threads, TensorBuffers",
    ),
    Workload(
        "litert_c_file",
        "litert",
        TUNING,
        ("{bin}/litert_c_driver", LITERT_LIB, "{models}/mlp.tflite", "--threads", "2", "--runs", "3"),
        "C API (libLiteRt.so): MLP from a file, CPU 2 threads",
    ),
    Workload(
        "litert_c_mem",
        "litert",
        KEPT_ASIDE,
        (
            "{bin}/litert_c_driver",
            LITERT_LIB,
            "{models}/conv.tflite",
            "--memory",
            "--threads",
            "2",
            "--runs",
            "3",
            "--metrics",
        ),
        "C API (libLiteRt.so): conv net from a buffer, CPU 2 threads, metrics collection on",
    ),
)
