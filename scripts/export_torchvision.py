#!/usr/bin/python3
"""Convert a torchvision state_dict to a safetensors file that cxr reads.

    /usr/bin/python3 scripts/export_torchvision.py --pth resnet18-f37072fd.pth -o resnet18.safetensors
    /usr/bin/python3 scripts/export_torchvision.py --model resnet18 --random --seed 0 -o r18.safetensors
    /usr/bin/python3 scripts/export_torchvision.py --pth chexnet.pth.tar --strip-prefix module.densenet121. -o chexnet.safetensors

Plain Python (struct + json), no `safetensors` package: an 8-byte little-endian header
length, the JSON header {"name": {"dtype", "shape", "data_offsets"}, "__metadata__": {...}}
padded with spaces to a multiple of 8 bytes, then the raw little-endian tensor bytes in
state_dict order. torchvision's key names are kept as they are, num_batches_tracked (I64)
included. --random builds the named torchvision model with random initialisation (no
download), for tests. Run with Debian's /usr/bin/python3 (python3-torch, python3-torchvision).
"""
import argparse
import json
import os
import re
import struct
import sys

import torch

DTYPES = {
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.float64: "F64",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}


def tensor_bytes(t):
    t = t.detach().to("cpu").contiguous()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: same bits as int16
        t = t.view(torch.int16)
    a = t.numpy()
    return a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()


def serialize(tensors, metadata=None):
    """tensors: list of (name, torch.Tensor); metadata: dict of str -> str. Returns bytes."""
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name, t in tensors:
        if name in header:
            raise ValueError(f"tensor name {name!r} given twice")
        if t.dtype not in DTYPES:
            raise ValueError(f"tensor {name!r}: dtype {t.dtype} has no safetensors name")
        data = tensor_bytes(t)
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def write(path, tensors, metadata=None):
    """Writes atomically: a temporary file in the same folder, then a rename."""
    data = serialize(tensors, metadata)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# DenseNet checkpoints saved before torchvision 0.2 (CheXNet's among them) name a dense layer's
# modules "norm.1", "conv.2", ...; torchvision's densenet loader renames them to "norm1", "conv2",
# ..., and so does this script (other keys never match). Those checkpoints predate PyTorch 0.4's
# num_batches_tracked: a batch norm without one gets a 0, as PyTorch's own loader assumes.
LEGACY_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$")


def load_state_dict(pth, strip_prefix):
    obj = torch.load(pth, map_location="cpu")
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        sys.exit(f"{pth}: expected a state_dict (dict of tensors), found {type(obj).__name__}")
    out = {}
    for k, v in obj.items():
        if not torch.is_tensor(v):
            continue
        if strip_prefix and k.startswith(strip_prefix):
            k = k[len(strip_prefix):]
        legacy = LEGACY_DENSENET_KEY.match(k)
        if legacy:
            k = legacy.group(1) + legacy.group(2)
        out[k] = v
    for k in [k for k in out if k.endswith(".running_var")]:
        out.setdefault(k[: -len("running_var")] + "num_batches_tracked", torch.tensor(0, dtype=torch.int64))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--pth", help="a torchvision .pth state_dict")
    src.add_argument("--model", help="a torchvision model name (resnet18, resnet50, efficientnet_b0, ...)")
    ap.add_argument("--random", action="store_true", help="with --model: random initialisation, no download")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--strip-prefix", default="", help='drop this prefix from key names (e.g. "module.")')
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()

    if args.pth:
        state = load_state_dict(args.pth, args.strip_prefix)
        meta = {"format": "pt", "source": os.path.basename(args.pth)}
    else:
        if not args.random:
            sys.exit("--model needs --random (no downloads here); use --pth for pretrained weights")
        import torchvision

        torch.manual_seed(args.seed)
        model = getattr(torchvision.models, args.model)(weights=None)
        state = model.state_dict()
        meta = {"format": "pt", "source": f"torchvision.models.{args.model}(weights=None), seed {args.seed}",
                "architecture": args.model}
    write(args.output, list(state.items()), meta)
    total = sum(t.numel() for t in state.values())
    print(f"wrote {args.output}: {len(state)} tensors, {total} elements")


if __name__ == "__main__":
    main()
