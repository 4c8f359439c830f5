"""torch TorchScript: a small conv net scripted with torch.jit.script, frozen, saved to a file, loaded
back from the file and from an in-memory buffer, 3 inferences each with 2 intra-op and 2 inter-op
threads, profiling off.
Usage: python torch_jit.py MODELS_DIR OUT_DIR"""

import io
import sys
from pathlib import Path

import torch
from torch import nn

out = Path(sys.argv[2])
torch.manual_seed(1)
torch.set_num_threads(2)
torch.set_num_interop_threads(2)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 16, 3, padding=1)
        self.c2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.max_pool2d(torch.relu(self.c1(x)), 2)
        x = torch.relu(self.c2(x)).mean(dim=(2, 3))
        return torch.softmax(self.fc(x), dim=-1)


scripted = torch.jit.freeze(torch.jit.script(Net().eval()))
path = out / "net.torchscript"
torch.jit.save(scripted, str(path))
from_file = torch.jit.load(str(path))
buf = io.BytesIO(path.read_bytes())
from_memory = torch.jit.load(buf)
x = torch.randn(4, 3, 32, 32)
with torch.inference_mode():
    a = sum(float(from_file(x).sum()) for _ in range(3))
    b = sum(float(from_memory(x).sum()) for _ in range(3))
print("threads", torch.get_num_threads(), torch.get_num_interop_threads(), "sums", a, b)
