#!/usr/bin/env python3
"""Golden trajectories for the Adafactor tests, from an implementation independent of the Java code:
a float64 NumPy transcription of `transformers.optimization.Adafactor.step` (torch and transformers
are not installable on the development machine; this follows the Hugging Face source line by line,
in float64 instead of PyTorch's fp32):

    state step += 1;  RMS = ||p||_2 / sqrt(numel)            (p: the parameter, or p.float() of a 16-bit one)
    lr  = (max(eps2, RMS) if scale_parameter else 1) * (min(1e-6*t if warmup_init else 1e-2, 1/sqrt(t))
                                                         if relative_step else lr)
    beta2t = 1 - t ** decay_rate;  update = grad**2 + eps1
    factored (ndim >= 2): row = row*beta2t + update.mean(-1)*(1-beta2t); col = col*beta2t + update.mean(-2)*(1-beta2t)
                          update = rsqrt(row / row.mean(-1, keepdim))[..., None] * rsqrt(col)[..., None, :] * grad
    else:                 v = v*beta2t + update*(1-beta2t);  update = rsqrt(v) * grad
    update /= max(RMS(update) / clip_threshold, 1);  update *= lr
    beta1: exp_avg = exp_avg*beta1 + update*(1-beta1); update = exp_avg
    weight_decay != 0: p += p * (-weight_decay * lr)
    p -= update;  a 16-bit p is rounded back (p.copy_(p_data_fp32)) every step

Inputs are generated, not stored: value(seed, i) = ((splitmix64(seed*0x100000001B3 + i) >> 40) - 2^23) / 2^23,
an exact fp32 number in [-1, 1) that the Java test regenerates bit for bit (dev.rslora.train.AdafactorGoldenTest).
The parameter starts at 0.5*value(pseed, i) (rounded to bf16 for the 16-bit cases); the gradient of step t
is value(gseed + t, i) * scale_t with scale_t = 2^-12 on every 7th step and 2^-2 otherwise, times a 0/1 mask
that zeroes some rows and columns in the 'zero-rows-cols' case.

Writes OUT (default ../resources/golden/adafactor/adafactor_golden.safetensors next to this script):
  CASE.param.T                 the parameter after step T (F64; T in the case's snapshot list)
  CASE.master.T                the f64 master after step T (master-weight case)
  CASE.exp_avg_sq_row / _col / exp_avg_sq / exp_avg   the state after the last step (F64)
and metadata "cases": a JSON list of {name, shape, dtype, master, steps, snapshots, pseed, gseed, zero_rows,
zero_cols, config{lr, eps1, eps2, clip_threshold, decay_rate, beta1, weight_decay, scale_parameter,
relative_step, warmup_init}}.

Run: python3 java/src/test/python/make_adafactor_golden.py   (needs only numpy; deterministic)
"""
import json
import math
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                      os.path.join(HERE, "..", "resources", "golden", "adafactor", "adafactor_golden.safetensors"))
M64 = (1 << 64) - 1


def splitmix64(x):
    """SplitMix64 finaliser of uint64 array x + golden gamma (numpy uint64 arithmetic wraps)."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def values(seed, n):
    """value(seed, i) for i < n, as float64 (each exactly an fp32 number)."""
    base = np.uint64((seed * 0x100000001B3) & M64)
    with np.errstate(over="ignore"):
        idx = base + np.arange(n, dtype=np.uint64)
    h = splitmix64(idx)
    k = (h >> np.uint64(40)).astype(np.int64) - (1 << 23)
    return k.astype(np.float64) / float(1 << 23)


def to_f32(x):
    return np.asarray(x, dtype=np.float64).astype(np.float32).astype(np.float64)


def to_bf16(x):
    """fp64 -> fp32 -> bf16 (round to nearest even), as p.copy_(p_data_fp32) on a bf16 tensor."""
    f = np.asarray(x, dtype=np.float64).astype(np.float32)
    b = f.view(np.uint32).astype(np.uint64)
    b = (b + np.uint64(0x7FFF) + ((b >> np.uint64(16)) & np.uint64(1))) & np.uint64(0xFFFF0000)
    return b.astype(np.uint32).view(np.float32).astype(np.float64)


def rms(x):
    return np.linalg.norm(x.reshape(-1)) / math.sqrt(x.size)


class HFAdafactor:
    """transformers.optimization.Adafactor for one parameter, in float64."""

    def __init__(self, shape, cfg):
        self.cfg = cfg
        self.t = 0
        self.factored = len(shape) >= 2
        if cfg["beta1"] is not None:
            self.exp_avg = np.zeros(shape)
        if self.factored:
            self.row = np.zeros(shape[:-1])
            self.col = np.zeros(shape[:-2] + shape[-1:])
        else:
            self.v = np.zeros(shape)

    def lr(self, p_rms):
        c = self.cfg
        rel = c["lr"]
        if c["relative_step"]:
            min_step = 1e-6 * self.t if c["warmup_init"] else 1e-2
            rel = min(min_step, 1.0 / math.sqrt(self.t))
        scale = 1.0
        if c["scale_parameter"]:
            scale = max(c["eps2"], p_rms)
        return scale * rel

    def step(self, p, g):
        c = self.cfg
        self.t += 1
        lr = self.lr(rms(p))
        beta2t = 1.0 - math.pow(self.t, c["decay_rate"])
        update = g ** 2 + c["eps1"]
        if self.factored:
            self.row = self.row * beta2t + update.mean(axis=-1) * (1.0 - beta2t)
            self.col = self.col * beta2t + update.mean(axis=-2) * (1.0 - beta2t)
            r = 1.0 / np.sqrt(self.row / self.row.mean(axis=-1, keepdims=True))
            cf = 1.0 / np.sqrt(self.col)
            update = r[..., :, None] * cf[..., None, :] * g
        else:
            self.v = self.v * beta2t + update * (1.0 - beta2t)
            update = (1.0 / np.sqrt(self.v)) * g
        update = update / max(rms(update) / c["clip_threshold"], 1.0)
        update = update * lr
        if c["beta1"] is not None:
            self.exp_avg = self.exp_avg * c["beta1"] + update * (1 - c["beta1"])
            update = self.exp_avg
        if c["weight_decay"] != 0:
            p = p + p * (-c["weight_decay"] * lr)
        return p - update


def config(**over):
    c = dict(lr=None, eps1=1e-30, eps2=1e-3, clip_threshold=1.0, decay_rate=-0.8, beta1=None, weight_decay=0.0,
             scale_parameter=True, relative_step=True, warmup_init=False)
    c.update(over)
    return c


def trainer(lr, **over):
    return config(lr=lr, scale_parameter=False, relative_step=False, **over)


def snapshots(steps, every):
    s = sorted(set(list(range(1, min(steps, 5) + 1)) + list(range(every, steps + 1, every)) + [steps]))
    return s


CASES = [
    # name, shape, dtype, master, steps, config, zero rows, zero cols
    ("defaults-2d", [6, 9], "F32", False, 40, config(), [], []),
    ("defaults-1d", [11], "F32", False, 40, config(), [], []),
    ("trainer-2d", [5, 37], "F32", False, 40, trainer(1e-2), [], []),
    ("trainer-1d", [37], "F32", False, 40, trainer(1e-2), [], []),
    ("beta1-wd-scale-2d", [7, 4], "F32", False, 40, config(lr=1e-2, relative_step=False, beta1=0.9, weight_decay=0.1), [], []),
    ("beta1-wd-relative-1d", [9], "F32", False, 40, config(beta1=0.8, weight_decay=0.05), [], []),
    ("warmup-init-2d", [3, 5], "F32", False, 40, config(warmup_init=True), [], []),
    ("clip-eps-decay-2d", [4, 6], "F32", False, 40,
     trainer(3e-2, clip_threshold=0.5, eps1=1e-20, decay_rate=-0.5), [], []),
    ("eps2-floor-2d", [4, 4], "F32", False, 30, config(eps2=0.7), [], []),
    ("rank3", [2, 3, 5], "F32", False, 30, config(), [], []),
    ("one-by-one", [1, 1], "F32", False, 20, trainer(1e-2), [], []),
    ("single", [1], "F32", False, 20, trainer(1e-2, beta1=0.5), [], []),
    ("row-vector", [1, 8], "F32", False, 30, config(), [], []),
    ("column-vector", [8, 1], "F32", False, 30, config(), [], []),
    ("zero-rows-cols", [6, 7], "F32", False, 30, trainer(1e-2), [1, 4], [0, 5]),
    ("long-rows", [2, 2053], "F32", False, 12, trainer(1e-3), [], []),
    ("tall-cols", [131, 3], "F32", False, 12, config(), [], []),
    ("bf16-2d", [6, 10], "BF16", False, 30, trainer(1e-2), [], []),
    ("bf16-master-2d", [6, 10], "BF16", True, 30, trainer(1e-2), [], []),
    ("bf16-1d", [13], "BF16", False, 30, config(), [], []),
]


def grad(case_gseed, t, shape, zero_rows, zero_cols):
    n = int(np.prod(shape))
    scale = 2.0 ** -12 if t % 7 == 0 else 2.0 ** -2
    g = values(case_gseed + t, n).reshape(shape) * scale
    if zero_rows or zero_cols:
        g = g.copy()
        for r in zero_rows:
            g[..., r, :] = 0.0
        for c in zero_cols:
            g[..., c] = 0.0
    return g


def run_case(k, name, shape, dtype, master, steps, cfg, zero_rows, zero_cols, tensors):
    pseed, gseed = 1000 + 17 * k, 5000 + 1000 * k
    n = int(np.prod(shape))
    p = 0.5 * values(pseed, n).reshape(shape)
    if dtype == "BF16":
        p = to_bf16(p)
    opt = HFAdafactor(tuple(shape), cfg)
    big = n > 256
    snaps = [steps] if big else snapshots(steps, 5)
    for t in range(1, steps + 1):
        g = grad(gseed, t, shape, zero_rows, zero_cols)
        p = opt.step(p, g)
        stored = p
        if dtype == "BF16":
            stored = to_bf16(p)
            if not master:
                p = stored  # HF: the bf16 parameter is the state between steps
        if t in snaps:
            tensors[f"{name}.param.{t}"] = stored.reshape(shape)
            if master:
                tensors[f"{name}.master.{t}"] = p.reshape(shape)
    if opt.factored:
        tensors[f"{name}.exp_avg_sq_row"] = opt.row
        tensors[f"{name}.exp_avg_sq_col"] = opt.col
    else:
        tensors[f"{name}.exp_avg_sq"] = opt.v
    if cfg["beta1"] is not None:
        tensors[f"{name}.exp_avg"] = opt.exp_avg
    return dict(name=name, shape=shape, dtype=dtype, master=master, steps=steps, snapshots=snaps, pseed=pseed,
                gseed=gseed, zero_rows=zero_rows, zero_cols=zero_cols, config=cfg)


def save_safetensors(path, tensors, metadata):
    """u64 LE header length, JSON header padded with spaces to a multiple of 8, then the data (F64, sorted by name)."""
    header = {"__metadata__": metadata}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f8")
        b = a.tobytes()
        header[name] = {"dtype": "F64", "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    tensors = {}
    cases = [run_case(k, *c, tensors) for k, c in enumerate(CASES)]
    save_safetensors(OUT, tensors, {"format": "rslora.adafactor-golden", "generator": "make_adafactor_golden.py",
                                    "numpy": np.__version__, "cases": json.dumps(cases)})
    print(f"wrote {OUT}: {len(cases)} cases, {len(tensors)} tensors, {os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
