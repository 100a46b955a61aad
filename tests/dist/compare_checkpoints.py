#!/usr/bin/env python3
"""Compares the tensors of two cxr checkpoints (safetensors), standard library only.

  compare_checkpoints.py A B identical        every tensor byte for byte
  compare_checkpoints.py A B within TOL       weights' relative L2 difference <= TOL
  compare_checkpoints.py A B beyond TOL       ... > TOL (a difference the test expects)
  compare_checkpoints.py A B rel              prints the relative L2 difference only

The relative L2 difference is over every model tensor (not the optimiser state):
sqrt(sum (a - b)^2 / sum a^2). Prints it; exits 1 when the check fails.
"""
import json
import math
import struct
import sys


def load(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    data = raw[8 + n:]
    out = {}
    for name, v in header.items():
        s, e = v["data_offsets"]
        out[name] = (v["dtype"], data[s:e])
    return out


def floats(dtype, blob):
    if dtype != "F32":
        return None
    return struct.unpack("<%df" % (len(blob) // 4), blob)


def main():
    a_path, b_path, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    a, b = load(a_path), load(b_path)
    if sorted(a) != sorted(b):
        print("different tensor names: %s" % sorted(set(a) ^ set(b)))
        return 1
    if mode == "identical":
        bad = [k for k in a if a[k] != b[k]]
        print("identical" if not bad else "differ: %s" % bad[:5])
        return 0 if not bad else 1
    num = den = 0.0
    for k in a:
        if k.startswith("optimizer."):
            continue
        fa, fb = floats(*a[k]), floats(*b[k])
        if fa is None:
            continue
        num += sum((x - y) ** 2 for x, y in zip(fa, fb))
        den += sum(x * x for x in fa)
    rel = math.sqrt(num / den) if den > 0 else 0.0
    if mode == "rel":
        print("%.6e" % rel)
        return 0
    tol = float(sys.argv[4])
    ok = rel <= tol if mode == "within" else rel > tol
    print("relative L2 difference of the weights: %.3e (%s %g: %s)" % (rel, mode, tol, "ok" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
