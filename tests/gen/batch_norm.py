"""Golden values for batch_norm2d from PyTorch (nn.functional.batch_norm).

Writes tests/golden/batch_norm.json: one training step (momentum 0.1, eps 1e-5) on x with its
outputs, the saved statistics, the updated running statistics and the gradients for a given
dy; and the evaluation forward with the updated running statistics.
Run with Debian's python3: /usr/bin/python3 tests/gen/batch_norm.py
"""
import torch
import torch.nn.functional as F

import golden_io as gio

torch.manual_seed(20240611)
cases = []
for shape in [(2, 3, 5, 5), (2, 8, 4, 4), (3, 16, 1, 1)]:
    n, c, h, w = shape
    x = (torch.randn(shape, dtype=torch.float64) * 2.0 + 0.5)
    weight = torch.rand(c, dtype=torch.float64) + 0.5
    bias = torch.rand(c, dtype=torch.float64) - 0.5
    running_mean = torch.rand(c, dtype=torch.float64) * 0.4 - 0.2
    running_var = torch.rand(c, dtype=torch.float64) * 1.5 + 0.5
    dy = torch.randn(shape, dtype=torch.float64)
    # The float32 values the test feeds in; compute in float64 from them.
    x, weight, bias, running_mean, running_var, dy = (
        t.float().double() for t in (x, weight, bias, running_mean, running_var, dy))

    rm, rv = running_mean.clone(), running_var.clone()
    xr = x.clone().requires_grad_(True)
    wr = weight.clone().requires_grad_(True)
    br = bias.clone().requires_grad_(True)
    y = F.batch_norm(xr, rm, rv, wr, br, training=True, momentum=0.1, eps=1e-5)
    dx, dw, db = torch.autograd.grad(y, (xr, wr, br), dy)
    mean = x.mean(dim=(0, 2, 3))
    invstd = 1.0 / torch.sqrt(x.var(dim=(0, 2, 3), unbiased=False) + 1e-5)
    y_eval = F.batch_norm(x, rm, rv, weight, bias, training=False, eps=1e-5)
    cases.append({
        "x": gio.tensor(x), "weight": gio.tensor(weight), "bias": gio.tensor(bias),
        "running_mean": gio.tensor(running_mean), "running_var": gio.tensor(running_var),
        "dy": gio.tensor(dy),
        "y": gio.tensor(y), "saved_mean": gio.tensor(mean), "saved_invstd": gio.tensor(invstd),
        "running_mean_after": gio.tensor(rm), "running_var_after": gio.tensor(rv),
        "dx": gio.tensor(dx), "dweight": gio.tensor(dw), "dbias": gio.tensor(db),
        "y_eval": gio.tensor(y_eval),
    })

gio.write("batch_norm", {"torch": torch.__version__, "momentum": 0.1, "eps": 1e-5, "cases": cases})
