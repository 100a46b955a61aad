"""Golden values for conv2d: PyTorch's forward output and dx, dw, db for a given upstream grad.

Run with Debian's python3 (python3-torch):  /usr/bin/python3 tests/gen/conv2d.py
Writes tests/golden/conv2d.json. Inputs are drawn in float32, the math runs in float64.
"""
import torch
import torch.nn.functional as F

from golden_io import tensor as full_tensor, write


def tensor(t):
    """As golden_io.tensor, with 8 significant digits (float32 is good to ~7): a smaller file."""
    j = full_tensor(t)
    j["data"] = [float("%.8g" % v) for v in j["data"]]
    return j

CONFIGS = [
    # name, x shape, w shape, bias, stride, padding, dilation, groups
    ("3x3 s1 p1 bias", (2, 3, 6, 5), (4, 3, 3, 3), True, (1, 1), (1, 1), (1, 1), 1),
    ("3x3 s2 p1", (1, 4, 7, 7), (6, 4, 3, 3), False, (2, 2), (1, 1), (1, 1), 1),
    ("7x7 s2 p3 stem", (1, 3, 11, 10), (4, 3, 7, 7), False, (2, 2), (3, 3), (1, 1), 1),
    ("1x1 s1 bias", (2, 8, 4, 5), (6, 8, 1, 1), True, (1, 1), (0, 0), (1, 1), 1),
    ("1x1 s2 groups 2", (1, 4, 5, 6), (6, 2, 1, 1), False, (2, 2), (0, 0), (1, 1), 2),
    ("depthwise 3x3 s1 p1 bias", (2, 4, 6, 7), (4, 1, 3, 3), True, (1, 1), (1, 1), (1, 1), 4),
    ("depthwise 5x5 s2 p2 bias", (2, 4, 8, 8), (4, 1, 5, 5), True, (2, 2), (2, 2), (1, 1), 4),
    ("3x3 s(2,1) p(0,1) dilation 2", (1, 2, 9, 8), (3, 2, 3, 3), False, (2, 1), (0, 1), (2, 2), 1),
]


def main():
    torch.manual_seed(0)
    cases = []
    for name, xs, ws, has_bias, stride, padding, dilation, groups in CONFIGS:
        x = torch.randn(xs).double().requires_grad_()
        w = (torch.rand(ws) - 0.5).double().requires_grad_()
        b = torch.randn(ws[0]).double().requires_grad_() if has_bias else None
        y = F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
        dy = torch.randn(y.shape).double()
        y.backward(dy)
        cases.append({
            "name": name, "stride": list(stride), "padding": list(padding), "dilation": list(dilation),
            "groups": groups, "x": tensor(x), "w": tensor(w), "b": tensor(b) if has_bias else None,
            "y": tensor(y), "dy": tensor(dy), "dx": tensor(x.grad), "dw": tensor(w.grad),
            "db": tensor(b.grad) if has_bias else None,
        })
    write("conv2d", {"generator": "tests/gen/conv2d.py", "torch": torch.__version__, "cases": cases})


if __name__ == "__main__":
    main()
