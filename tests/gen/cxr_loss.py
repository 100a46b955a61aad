"""Golden values of the fused CXR loss (kernels/cxr_loss.h) from PyTorch.

loss = BCEWithLogitsLoss(pos_weight=pw, reduction='mean')(z, y)
     + lam * sum(m[..., None] * (sigmoid(b) - t)**2) / max(1, 4 * sum(m))
with dz = d loss / d z and db = d loss / d b from autograd (in float64, stored as f32).

    /usr/bin/python3 tests/gen/cxr_loss.py   -> tests/golden/cxr_loss.json
"""
import torch

from golden_io import tensor, write

torch.manual_seed(1234)
N, C = 8, 14
lam = 2.5

z = (torch.randn(N, C) * 3.0).double()
z[0, 0], z[0, 1], z[1, 0] = 40.0, -40.0, -25.0  # saturated logits: the stable formula matters
y = (torch.rand(N, C) < 0.4).double()
pw = torch.empty(C).uniform_(0.5, 5.0).double()
b = (torch.randn(N, C, 4) * 1.5).double()
t = torch.rand(N, C, 4).double()
m = (torch.rand(N, C) < 0.3).double()
m[2] = 0.0  # a sample without any box
m[3, 5] = 1.0

z.requires_grad_(True)
b.requires_grad_(True)
bce = torch.nn.BCEWithLogitsLoss(pos_weight=pw, reduction="mean")(z, y)
mse = (m[..., None] * (torch.sigmoid(b) - t) ** 2).sum() / torch.clamp(4.0 * m.sum(), min=1.0)
loss = bce + lam * mse
loss.backward()

write("cxr_loss", {
    "box_weight": lam,
    "z": tensor(z), "y": tensor(y), "pw": tensor(pw), "b": tensor(b), "t": tensor(t), "m": tensor(m),
    "loss": tensor(loss.reshape(1)), "bce": tensor(bce.reshape(1)), "mse": tensor(mse.reshape(1)),
    "dz": tensor(z.grad), "db": tensor(b.grad),
})
