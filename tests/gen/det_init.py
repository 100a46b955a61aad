"""Deterministic tensors, filled identically by tests/det_init.cpp (see its header).

    u(name, i) = (splitmix64(fnv1a64(name) + i) >> 40) / 2**24 * 2 - 1
    det_uniform(name, shape, scale, offset)[i] = scale * u(name, i) + offset   (as float32)
"""
import numpy as np
import torch

M64 = (1 << 64) - 1


def fnv1a64(s):
    h = 14695981039346656037
    for c in s.encode():
        h ^= c
        h = (h * 1099511628211) & M64
    return h


def _splitmix64_np(x):
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def det_uniform(name, shape, scale, offset=0.0):
    n = int(np.prod(shape)) if len(shape) else 1
    with np.errstate(over="ignore"):
        idx = np.arange(n, dtype=np.uint64) + np.uint64(fnv1a64(name))
        bits = _splitmix64_np(idx) >> np.uint64(40)
    u = bits.astype(np.float64) / 16777216.0 * 2.0 - 1.0
    v = (scale * u + offset).astype(np.float32)
    return torch.from_numpy(v.reshape(shape))
