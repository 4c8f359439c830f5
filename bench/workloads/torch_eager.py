"""torch eager mode: a small MLP with 2 intra-op threads (OpenMP pool), 3 inferences under no_grad, one
training step (backward + SGD), state_dict saved with torch.save and loaded with torch.load into a new
model, one inference under torch.profiler with a Chrome trace exported.
Usage: python torch_eager.py MODELS_DIR OUT_DIR"""

import sys
from pathlib import Path

import torch
from torch import nn

out = Path(sys.argv[2])
torch.manual_seed(0)
torch.set_num_threads(2)


def make() -> nn.Module:
    return nn.Sequential(
        nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 512), nn.GELU(), nn.Linear(512, 10), nn.LogSoftmax(dim=-1)
    )


model = make().eval()
x = torch.randn(64, 256)
with torch.no_grad():
    total = sum(float(model(x).exp().sum()) for _ in range(3))
model.train()
opt = torch.optim.SGD(model.parameters(), lr=0.01)
loss = nn.functional.nll_loss(model(x), torch.randint(0, 10, (64,)))
loss.backward()
opt.step()
torch.save(model.state_dict(), out / "mlp.pt")
model2 = make()
model2.load_state_dict(torch.load(out / "mlp.pt", weights_only=True))
model2.eval()
with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof, torch.no_grad():
    y = model2(x)
prof.export_chrome_trace(str(out / "torch_eager_profile.json"))
print("threads", torch.get_num_threads(), "sum", total, float(y.exp().sum()), "loss", float(loss))
