"""A small safetensors file written from a PyTorch state_dict, for tests/train/test_safetensors.cpp.

Debian has no python3-safetensors, so the file is written by scripts/export_torchvision.py's
plain-Python writer (struct + json). The model is a tiny Conv2d/BatchNorm2d/Linear net in
torchvision's naming style (BatchNorm2d brings the I64 num_batches_tracked scalar); an F16
and a BF16 buffer are added to cover the half-precision dtypes. Values follow a formula the
C++ test recomputes: element i of tensor number k (in state_dict order) is
    ((i * 7 + k * 3) % 23 - 11) / 8      (exact in F32, F16 and BF16)
and num_batches_tracked is 7 + k.

    /usr/bin/python3 tests/gen/safetensors_torch.py   ->  tests/golden/torch_small.safetensors
"""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts"))
import export_torchvision  # noqa: E402


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 4, 3, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(4)
        self.layer1 = torch.nn.Sequential(torch.nn.Conv2d(4, 2, 1), torch.nn.BatchNorm2d(2))
        self.fc = torch.nn.Linear(2, 5)
        self.register_buffer("half_scale", torch.zeros(3, dtype=torch.float16))
        self.register_buffer("bf16_scale", torch.zeros(2, 2, dtype=torch.bfloat16))


def main():
    model = Tiny()
    state = model.state_dict()
    with torch.no_grad():
        for k, (name, t) in enumerate(state.items()):
            if name.endswith("num_batches_tracked"):
                t.fill_(7 + k)
            else:
                i = torch.arange(t.numel(), dtype=torch.float64)
                v = (((i * 7 + k * 3) % 23) - 11) / 8
                t.copy_(v.reshape(t.shape).to(t.dtype))
    out = os.path.join(HERE, "..", "golden", "torch_small.safetensors")
    export_torchvision.write(out, list(state.items()), {"format": "pt", "written_by": "tests/gen/safetensors_torch.py"})
    for name, t in state.items():
        print(f"  {name:28s} {str(t.dtype):16s} {list(t.shape)}")
    print("wrote", os.path.relpath(out), os.path.getsize(out), "bytes")


if __name__ == "__main__":
    main()
