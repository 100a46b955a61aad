"""Golden values for batch_norm2d_eval_backward from PyTorch: nn.BatchNorm2d in eval mode.

Writes tests/golden/batch_norm_eval.json: for x with requires_grad, a BatchNorm2d module in
eval mode (frozen running statistics, eps 1e-5) with given weight, bias, running_mean and
running_var: the output y and, for a given dy, the gradients dx, dweight and dbias.
Run with Debian's python3: /usr/bin/python3 tests/gen/batch_norm_eval.py
"""
import torch

import golden_io as gio

torch.manual_seed(20261126)
cases = []
for shape in [(2, 3, 5, 5), (2, 8, 4, 4), (3, 16, 1, 1)]:
    n, c, h, w = shape
    x = torch.randn(shape, dtype=torch.float64) * 2.0 + 0.5
    weight = torch.rand(c, dtype=torch.float64) + 0.5
    bias = torch.rand(c, dtype=torch.float64) - 0.5
    running_mean = torch.rand(c, dtype=torch.float64) * 0.4 - 0.2
    running_var = torch.rand(c, dtype=torch.float64) * 1.5 + 0.5
    dy = torch.randn(shape, dtype=torch.float64)
    # The float32 values the test feeds in; compute in float64 from them.
    x, weight, bias, running_mean, running_var, dy = (
        t.float().double() for t in (x, weight, bias, running_mean, running_var, dy))

    bn = torch.nn.BatchNorm2d(c, eps=1e-5, momentum=0.1).double()
    with torch.no_grad():
        bn.weight.copy_(weight)
        bn.bias.copy_(bias)
        bn.running_mean.copy_(running_mean)
        bn.running_var.copy_(running_var)
    bn.eval()
    xr = x.clone().requires_grad_(True)
    y = bn(xr)
    y.backward(dy)
    # Eval mode must leave the statistics alone.
    assert torch.equal(bn.running_mean, running_mean) and torch.equal(bn.running_var, running_var)
    cases.append({
        "x": gio.tensor(x), "weight": gio.tensor(weight), "bias": gio.tensor(bias),
        "running_mean": gio.tensor(running_mean), "running_var": gio.tensor(running_var),
        "dy": gio.tensor(dy), "y": gio.tensor(y),
        "dx": gio.tensor(xr.grad), "dweight": gio.tensor(bn.weight.grad), "dbias": gio.tensor(bn.bias.grad),
    })

gio.write("batch_norm_eval", {"torch": torch.__version__, "eps": 1e-5, "cases": cases})
