#!/usr/bin/env python3
"""The PyTorch/PEFT peer of the GPU benchmarks: one LoRA layer training step (forward + backward)
as a PEFT user writes it, and the frozen base nn.Linear alone, same shapes, same run.

  lora : get_peft_model(Wrap(nn.Linear(d, d, bias=False)),
                        LoraConfig(r, lora_alpha, lora_dropout=p, target_modules=["proj"], use_rslora=True))
         (gamma = alpha/sqrt(r)), bf16 base, train mode; X requires grad, so the step computes
         Y, dX, dA, dB (W frozen by PEFT)
  base : nn.Linear(d, d, bias=False) bf16 with W.requires_grad False: Y = X.W^T and dX = dY.W only

Method (docs/PERFORMANCE.md section 6): CUDA events around each step, warm-up first, median of many
repetitions, inputs (X, dY) and the layer (W, A, B) rotated over enough copies that consecutive steps
miss L2 (the rule of jmh/src/main/java/dev/rslora/bench/Rotation.java), uniform random data (never
zeros: B is randomised too, unlike PEFT's zero init), and checks in the same run: gamma is
alpha/sqrt(r), sampled rows of Y equal X.W^T + gamma.(X.A^T).B^T in eval mode, and after timing every
output and gradient is finite with at most 1 % exact zeros.

Prints JSON lines (also written to --out): one {"kind": "meta"} line, one {"kind": "timing"} line per
(impl, n, d, r) and one {"kind": "ratio"} line per (n, d, r) with R = lora / base (medians).
Exit status: 0 measured, 1 a check failed, 2 bad arguments, 3 skipped (no torch, no peft or no CUDA).

  python3 jmh/peft_peer.py --n 8192 --d 4096 --ranks 16,64,256 --out peft.jsonl
"""

import argparse
import datetime
import json
import math
import sys

ROTATION_TARGET_BYTES = 256 << 20  # Rotation.TARGET_BYTES
ROTATION_MIN_SETS = 2
ROTATION_MAX_SETS = 8
MAX_ZERO_FRACTION = 0.01


def rotation_sets(n, d_in, d_out, element_bytes):
    """Copies of X, dX, Y, dY and W that together cover ROTATION_TARGET_BYTES (2..8)."""
    per_set = element_bytes * (2 * n * d_in + 2 * n * d_out + d_out * d_in)
    k = -(-ROTATION_TARGET_BYTES // per_set)
    return max(ROTATION_MIN_SETS, min(ROTATION_MAX_SETS, k))


def int_list(text):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("expected comma-separated integers, got %r" % text)
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("expected positive integers, got %r" % text)
    return values


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int_list, default=[8192], help="token counts N (comma-separated)")
    ap.add_argument("--d", type=int_list, default=[4096], help="d_in = d_out values (comma-separated)")
    ap.add_argument("--ranks", type=int_list, default=[16, 64, 256], help="LoRA ranks r (comma-separated)")
    ap.add_argument("--dropout", type=float, default=0.1, help="lora_dropout p")
    ap.add_argument("--alpha", type=float, default=16.0, help="lora_alpha (gamma = alpha/sqrt(r))")
    ap.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    ap.add_argument("--reps", type=int, default=50, help="timed steps (the median is reported)")
    ap.add_argument("--keep-adapter-fp32", choices=["true", "false"], default="true",
                    help="get_peft_model(autocast_adapter_dtype=...): PEFT's default (true) keeps A and B in fp32 "
                         "and casts the bf16 input to fp32 for the adapter path")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", help="also write the JSON lines to this file")
    args = ap.parse_args(argv)
    if not 0.0 <= args.dropout < 1.0:
        ap.error("--dropout must be in [0, 1), got %g" % args.dropout)
    if args.reps < 5 or args.warmup < 1:
        ap.error("--reps must be >= 5 and --warmup >= 1")
    return args


class Out:
    """JSON lines to stdout and, when given, to a file."""

    def __init__(self, path):
        self.file = open(path, "w", encoding="utf-8") if path else None

    def emit(self, record):
        line = json.dumps(record, sort_keys=False)
        print(line, flush=True)
        if self.file:
            self.file.write(line + "\n")
            self.file.flush()

    def close(self):
        if self.file:
            self.file.close()


def skip(out, reason):
    out.emit({"kind": "skipped", "reason": reason})
    print("peft_peer: skipped: " + reason, file=sys.stderr)
    return 3


def require_finite_nonzero(torch, what, t):
    t = t.detach()
    if not bool(torch.isfinite(t).all()):
        raise AssertionError("%s %s holds NaN or Inf" % (what, tuple(t.shape)))
    zeros = int((t == 0).sum())
    if zeros > MAX_ZERO_FRACTION * t.numel():
        raise AssertionError("%s %s has %d exact zeros of %d" % (what, tuple(t.shape), zeros, t.numel()))


def require_rows_close(torch, what, got, ref):
    """|got - ref| <= 2e-2 max|ref| + 2^-5 |ref| (bf16 outputs; the naive 16-bit level of the Java check)."""
    err = (got.float() - ref).abs()
    lim = 2e-2 * ref.abs().max() + 2.0 ** -5 * ref.abs()
    bad = int((err > lim).sum())
    if bad:
        raise AssertionError("%s: %d of %d sampled elements outside tolerance (max err %.4g)"
                             % (what, bad, ref.numel(), float(err.max())))


def time_steps(torch, prepare, step, sets, warmup, reps):
    """CUDA-event time of step(k) for k rotating over the sets: warm-up, then reps timed steps."""
    for i in range(warmup):
        prepare(i % sets)
        step(i % sets)
    torch.cuda.synchronize()
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    for i in range(reps):
        prepare(i % sets)
        starts[i].record()
        step(i % sets)
        ends[i].record()
    torch.cuda.synchronize()
    ms = sorted(s.elapsed_time(e) for s, e in zip(starts, ends))
    return {
        "median_ms": ms[len(ms) // 2],
        "p10_ms": ms[len(ms) // 10],
        "p90_ms": ms[(len(ms) * 9) // 10],
        "min_ms": ms[0],
        "reps": reps,
    }


def main(argv):
    args = parse_args(argv)
    out = Out(args.out)
    try:
        try:
            import torch
            from torch import nn
        except ImportError as e:
            return skip(out, "torch is not importable: %s" % e)
        if not torch.cuda.is_available():
            return skip(out, "torch %s sees no CUDA device" % torch.__version__)
        try:
            import peft
            from peft import LoraConfig, get_peft_model
        except ImportError as e:
            return skip(out, "peft is not importable: %s" % e)

        class Wrap(nn.Module):
            """The smallest model PEFT can wrap: one bias-free linear layer called "proj"."""

            def __init__(self, d_in, d_out, device, dtype):
                super().__init__()
                self.proj = nn.Linear(d_in, d_out, bias=False, device=device, dtype=dtype)

            def forward(self, x):
                return self.proj(x)

        dev = torch.device("cuda")
        props = torch.cuda.get_device_properties(dev)
        bf16 = torch.bfloat16
        torch.manual_seed(args.seed)
        out.emit({
            "kind": "meta",
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "device": props.name,
            "sm_count": props.multi_processor_count,
            "capability": "%d.%d" % (props.major, props.minor),
            "memory_gib": round(props.total_memory / 2 ** 30, 1),
            "l2_mib": round(getattr(props, "L2_cache_size", 0) / 2 ** 20, 1),
            "torch": torch.__version__,
            "torch_cuda": torch.version.cuda,
            "peft": peft.__version__,
            "python": sys.version.split()[0],
            "dtype": "bf16",
            "dropout": args.dropout,
            "alpha": args.alpha,
            "warmup": args.warmup,
            "reps": args.reps,
            "keep_adapter_fp32": args.keep_adapter_fp32 == "true",
        })

        for n in args.n:
            for d in args.d:
                sets = rotation_sets(n, d, d, 2)
                xs = [torch.empty(n, d, device=dev, dtype=bf16).uniform_(-1, 1).requires_grad_() for _ in range(sets)]
                dys = [torch.empty(n, d, device=dev, dtype=bf16).uniform_(-1, 1) for _ in range(sets)]
                w_bound = 1.0 / math.sqrt(d)

                # the frozen base alone: dX only
                bases = []
                for _ in range(sets):
                    lin = nn.Linear(d, d, bias=False, device=dev, dtype=bf16)
                    with torch.no_grad():
                        lin.weight.uniform_(-w_bound, w_bound)
                    lin.weight.requires_grad_(False)
                    bases.append(lin)
                rows = torch.tensor([0, n // 3, n - 1], device=dev)
                with torch.no_grad():
                    ref = xs[0][rows].float() @ bases[0].weight.float().t()
                    require_rows_close(torch, "base Y rows", bases[0](xs[0])[rows], ref)

                def base_prepare(k):
                    xs[k].grad = None

                def base_step(k):
                    bases[k](xs[k]).backward(dys[k])

                t_base = time_steps(torch, base_prepare, base_step, sets, args.warmup, args.reps)
                require_finite_nonzero(torch, "base dX", xs[(args.reps - 1) % sets].grad)
                out.emit(dict(kind="timing", impl="torch_base", n=n, d_in=d, d_out=d, r=0, dropout=0.0,
                              sets=sets, **t_base))
                del bases

                for r in args.ranks:
                    models = []
                    for _ in range(sets):
                        m = Wrap(d, d, dev, bf16)
                        with torch.no_grad():
                            m.proj.weight.uniform_(-w_bound, w_bound)
                        cfg = LoraConfig(r=r, lora_alpha=args.alpha, lora_dropout=args.dropout,
                                         target_modules=["proj"], use_rslora=True)
                        pm = get_peft_model(m, cfg, autocast_adapter_dtype=args.keep_adapter_fp32 == "true")
                        with torch.no_grad():
                            for name, p in pm.named_parameters():
                                if "lora_A" in name:
                                    p.uniform_(-w_bound, w_bound)
                                elif "lora_B" in name:
                                    p.uniform_(-1.0 / math.sqrt(r), 1.0 / math.sqrt(r))
                        pm.train()
                        models.append(pm)
                    layer = models[0].base_model.model.proj
                    gamma = layer.scaling["default"]
                    if abs(gamma - args.alpha / math.sqrt(r)) > 1e-9 * gamma:
                        raise AssertionError("PEFT scaling %r != alpha/sqrt(r) = %r: not rsLoRA"
                                             % (gamma, args.alpha / math.sqrt(r)))
                    a_w = layer.lora_A["default"].weight
                    b_w = layer.lora_B["default"].weight
                    with torch.no_grad():
                        models[0].eval()
                        x_rows = xs[0][rows].float()
                        ref = x_rows @ layer.base_layer.weight.float().t() \
                            + gamma * (x_rows @ a_w.float().t()) @ b_w.float().t()
                        require_rows_close(torch, "PEFT Y rows (eval, no dropout)", models[0](xs[0])[rows], ref)
                        models[0].train()
                    lora_params = [[p for p in m.parameters() if p.requires_grad] for m in models]

                    def lora_prepare(k):
                        xs[k].grad = None
                        for p in lora_params[k]:
                            p.grad = None

                    def lora_step(k):
                        models[k](xs[k]).backward(dys[k])

                    t_lora = time_steps(torch, lora_prepare, lora_step, sets, args.warmup, args.reps)
                    last = (args.reps - 1) % sets
                    require_finite_nonzero(torch, "PEFT dX", xs[last].grad)
                    for p in lora_params[last]:
                        require_finite_nonzero(torch, "PEFT grad %s" % (tuple(p.shape),), p.grad)
                    out.emit(dict(kind="timing", impl="peft", n=n, d_in=d, d_out=d, r=r, dropout=args.dropout,
                                  sets=sets, adapter_dtype=str(a_w.dtype).replace("torch.", ""), gamma=gamma, **t_lora))
                    out.emit({"kind": "ratio", "impl": "peft", "n": n, "d_in": d, "d_out": d, "r": r,
                              "R": t_lora["median_ms"] / t_base["median_ms"]})
                    del models, lora_params, layer, a_w, b_w
                    torch.cuda.empty_cache()
                del xs, dys
                torch.cuda.empty_cache()
        return 0
    except AssertionError as e:
        out.emit({"kind": "check_failed", "reason": str(e)})
        print("peft_peer: CHECK FAILED: %s" % e, file=sys.stderr)
        return 1
    finally:
        out.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
