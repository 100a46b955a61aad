"""Shared writer for golden files: tensors as {"shape": [...], "data": [...]} in JSON.

Run the generators with Debian's python3 (python3-torch), not a virtualenv:
    /usr/bin/python3 tests/gen/<name>.py
"""
import json
import os

GOLDEN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden")


def tensor(t):
    t = t.detach().to("cpu").float().contiguous()
    return {"shape": list(t.shape), "data": [float(v) for v in t.reshape(-1).tolist()]}


def write(name, obj):
    os.makedirs(GOLDEN_DIR, exist_ok=True)
    path = os.path.join(GOLDEN_DIR, name + ".json")
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
        f.write("\n")
    print("wrote", os.path.relpath(path))
