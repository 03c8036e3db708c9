#!/usr/bin/env python3
"""The PyTorch peers of the GPU benchmarks: one LoRA layer training step (forward + backward) as a
PyTorch user writes it, several ways, and the frozen base nn.Linear alone, same shapes, same run.

  base        nn.Linear(d, d, bias=False) bf16 with W.requires_grad False: Y = X.W^T and dX = dY.W only
  peft        get_peft_model(Wrap(nn.Linear(d, d, bias=False)),
                             LoraConfig(r, lora_alpha, lora_dropout=p, target_modules=["proj"], use_rslora=True))
              (gamma = alpha/sqrt(r)), bf16 base, train mode, PEFT's default autocast_adapter_dtype=True: the
              adapter stays fp32 and the bf16 input is cast to fp32 for it
  peft_bf16   the same with autocast_adapter_dtype=False: A and B in bf16 (what a bf16 trainer gets when it
              casts the whole model)
  eager       the formula by hand, bf16: F.linear(x, W) + (dropout(x) @ A.T @ B.T) * gamma
  compile     torch.compile(dynamic=False) of that formula (compile time is in the warm-up, not the timing)
  addmm       Unsloth's fast_lora shape, no dropout: Y = X.W^T, then Y.addmm_(X.A^T, B^T, alpha=gamma); the
              backward by hand: V = dY.B, dB = gamma.dY^T.(X.A^T), dA = gamma.V^T.X, dX = dY.W, dX.addmm_(V, A, alpha=gamma)
              (a custom autograd Function, as Unsloth writes it)
  In every LoRA step X requires grad, so the step computes Y, dX, dA, dB (W frozen).

Method (PERFORMANCE.md section 6, ../shared/docs/, outside this repository): CUDA events around each
step, warm-up first, median of many repetitions, inputs (X, dY) and the layer (W, A, B) rotated over
enough copies that consecutive steps miss L2 (the rule of
jmh/src/main/java/dev/rslora/bench/Rotation.java), uniform random data (never zeros: B is randomised
too, unlike PEFT's zero init), and checks in the same run: gamma is alpha/sqrt(r), sampled rows of Y
equal X.W^T + gamma.(X.A^T).B^T with dropout off, and after timing every output and gradient is finite
with at most 1 % exact zeros.

Prints JSON lines (also written to --out): one {"kind": "meta"} line, one {"kind": "timing"} line per
(impl, n, d, r), one {"kind": "ratio"} line per LoRA timing with R = lora / base (medians), and
{"kind": "skipped"} lines for what could not run (no peft, no torch.compile backend, the --budget-s spent).
Exit status: 0 measured, 1 a check failed, 2 bad arguments, 3 skipped (no torch or no CUDA).

  python3 jmh/peft_peer.py --n 8192 --d 4096 --ranks 16,64,256 --out peft.jsonl
  python3 jmh/peft_peer.py --impls base,peft_bf16,addmm ...     # a subset
"""

import argparse
import datetime
import json
import math
import sys
import time

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


IMPLS = ("base", "peft", "peft_bf16", "eager", "addmm", "compile")


def impl_list(text):
    values = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in values if v not in IMPLS]
    if not values or bad:
        raise argparse.ArgumentTypeError("expected a comma-separated subset of %s, got %r" % (",".join(IMPLS), text))
    return values


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int_list, default=[8192], help="token counts N (comma-separated)")
    ap.add_argument("--d", type=int_list, default=[4096], help="d_in = d_out values (comma-separated)")
    ap.add_argument("--ranks", type=int_list, default=[16, 64, 256], help="LoRA ranks r (comma-separated)")
    ap.add_argument("--impls", type=impl_list, default=list(IMPLS),
                    help="what to measure, in this order (default all: %s)" % ",".join(IMPLS))
    ap.add_argument("--dropout", type=float, default=0.1, help="lora_dropout p (the addmm peer has none)")
    ap.add_argument("--alpha", type=float, default=16.0, help="lora_alpha (gamma = alpha/sqrt(r))")
    ap.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    ap.add_argument("--reps", type=int, default=50, help="timed steps (the median is reported)")
    ap.add_argument("--budget-s", type=float, default=0.0,
                    help="seconds for the whole run (0: none); what would start after it is spent is skipped with a "
                         "'skipped' line instead of being cut off by an outer timeout")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", help="also write the JSON lines to this file")
    args = ap.parse_args(argv)
    if not 0.0 <= args.dropout < 1.0:
        ap.error("--dropout must be in [0, 1), got %g" % args.dropout)
    if args.reps < 5 or args.warmup < 1:
        ap.error("--reps must be >= 5 and --warmup >= 1")
    if args.budget_s < 0:
        ap.error("--budget-s must be >= 0")
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


class Budget:
    """Seconds left of --budget-s (never runs out when it is 0)."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.t0 = time.monotonic()

    def spent(self):
        return self.seconds > 0 and time.monotonic() - self.t0 >= self.seconds


def formula(torch, x, w, a, b, gamma, p, training):
    """The LoRA layer as a user writes it by hand: linear(x, W) + (dropout(x) @ A^T @ B^T) * gamma."""
    f = torch.nn.functional
    return f.linear(x, w) + (f.dropout(x, p, training) @ a.t() @ b.t()) * gamma


def addmm_function(torch):
    """Unsloth's fast_lora shape (no dropout): Y = X.W^T, Y += gamma.(X.A^T).B^T in place, backward by hand."""

    class AddmmLora(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, w, a, b, gamma):
            xa = x @ a.t()                           # [n, r]
            y = x @ w.t()                            # [n, d_out]
            y.addmm_(xa, b.t(), alpha=gamma)
            ctx.save_for_backward(x, w, a, b, xa)
            ctx.gamma = gamma
            return y

        @staticmethod
        def backward(ctx, dy):
            x, w, a, b, xa = ctx.saved_tensors
            g = ctx.gamma
            v = dy @ b                               # [n, r]
            db = (dy.t() @ xa).mul_(g)               # [d_out, r]
            da = (v.t() @ x).mul_(g)                 # [r, d_in]
            dx = dy @ w                              # [n, d_in]
            dx.addmm_(v, a, alpha=g)
            return dx, None, da, db, None

    return AddmmLora.apply


def main(argv):
    args = parse_args(argv)
    out = Out(args.out)
    budget = Budget(args.budget_s)
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
            peft = None
            for impl in ("peft", "peft_bf16"):
                if impl in args.impls:
                    out.emit({"kind": "skipped", "impl": impl, "reason": "peft is not importable: %s" % e})
            args.impls = [i for i in args.impls if i not in ("peft", "peft_bf16")]

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
            "peft": peft.__version__ if peft else "absent",
            "python": sys.version.split()[0],
            "dtype": "bf16",
            "dropout": args.dropout,
            "alpha": args.alpha,
            "warmup": args.warmup,
            "reps": args.reps,
            "impls": ",".join(args.impls),
        })
        addmm = addmm_function(torch)
        compiled = {}

        for n in args.n:
            for d in args.d:
                sets = rotation_sets(n, d, d, 2)
                xs = [torch.empty(n, d, device=dev, dtype=bf16).uniform_(-1, 1).requires_grad_() for _ in range(sets)]
                dys = [torch.empty(n, d, device=dev, dtype=bf16).uniform_(-1, 1) for _ in range(sets)]
                w_bound = 1.0 / math.sqrt(d)
                ws = [torch.empty(d, d, device=dev, dtype=bf16).uniform_(-w_bound, w_bound) for _ in range(sets)]
                rows = torch.tensor([0, n // 3, n - 1], device=dev)
                t_base = None

                def timed(impl, r, prepare, step, extra):
                    """Times step, checks the last set's gradients, emits the timing and its ratio to the base."""
                    t = time_steps(torch, prepare, step, sets, args.warmup, args.reps)
                    last = (args.reps - 1) % sets
                    require_finite_nonzero(torch, "%s dX" % impl, xs[last].grad)
                    for name, g in extra(last):
                        require_finite_nonzero(torch, "%s %s" % (impl, name), g)
                    rec = dict(kind="timing", impl=impl, n=n, d_in=d, d_out=d, r=r,
                               dropout=0.0 if impl in ("base", "addmm") else args.dropout, sets=sets)
                    out.emit(dict(rec, **t) if impl != "base" else dict(rec, impl="torch_base", **t))
                    if impl != "base" and t_base is not None:
                        out.emit({"kind": "ratio", "impl": impl, "n": n, "d_in": d, "d_out": d, "r": r,
                                  "R": t["median_ms"] / t_base["median_ms"]})
                    return t

                if "base" in args.impls:
                    # the frozen base alone: dX only
                    bases = []
                    for k in range(sets):
                        lin = nn.Linear(d, d, bias=False, device=dev, dtype=bf16)
                        with torch.no_grad():
                            lin.weight.copy_(ws[k])
                        lin.weight.requires_grad_(False)
                        bases.append(lin)
                    with torch.no_grad():
                        ref = xs[0][rows].float() @ ws[0].float().t()
                        require_rows_close(torch, "base Y rows", bases[0](xs[0])[rows], ref)

                    def base_prepare(k):
                        xs[k].grad = None

                    def base_step(k):
                        bases[k](xs[k]).backward(dys[k])

                    t_base = timed("base", 0, base_prepare, base_step, lambda last: [])
                    del bases

                # impl by impl (cheapest first, torch.compile last), so a spent budget skips the tail only
                for impl, r in [(i, r) for i in args.impls if i != "base" for r in args.ranks]:
                    gamma = args.alpha / math.sqrt(r)
                    if impl not in args.impls:
                        continue  # dropped after a failure to compile
                    if budget.spent():
                        out.emit({"kind": "skipped", "impl": impl, "n": n, "d_in": d, "d_out": d, "r": r,
                                  "reason": "--budget-s %g spent" % args.budget_s})
                        continue
                    if impl in ("peft", "peft_bf16"):
                        models = []
                        for k in range(sets):
                            m = Wrap(d, d, dev, bf16)
                            with torch.no_grad():
                                m.proj.weight.copy_(ws[k])
                            cfg = LoraConfig(r=r, lora_alpha=args.alpha, lora_dropout=args.dropout,
                                             target_modules=["proj"], use_rslora=True)
                            pm = get_peft_model(m, cfg, autocast_adapter_dtype=impl == "peft")
                            with torch.no_grad():
                                for name, p in pm.named_parameters():
                                    if "lora_A" in name:
                                        p.uniform_(-w_bound, w_bound)
                                    elif "lora_B" in name:
                                        p.uniform_(-1.0 / math.sqrt(r), 1.0 / math.sqrt(r))
                            pm.train()
                            models.append(pm)
                        layer = models[0].base_model.model.proj
                        g = layer.scaling["default"]
                        if abs(g - gamma) > 1e-9 * gamma:
                            raise AssertionError("PEFT scaling %r != alpha/sqrt(r) = %r: not rsLoRA" % (g, gamma))
                        a_w = layer.lora_A["default"].weight
                        b_w = layer.lora_B["default"].weight
                        want = torch.float32 if impl == "peft" else bf16
                        if a_w.dtype != want:
                            raise AssertionError("%s: adapter dtype %s, expected %s" % (impl, a_w.dtype, want))
                        with torch.no_grad():
                            models[0].eval()
                            x_rows = xs[0][rows].float()
                            ref = x_rows @ ws[0].float().t() + gamma * (x_rows @ a_w.float().t()) @ b_w.float().t()
                            require_rows_close(torch, "%s Y rows (eval, no dropout)" % impl, models[0](xs[0])[rows], ref)
                            models[0].train()
                        params = [[p for p in m.parameters() if p.requires_grad] for m in models]

                        def prepare(k, params=params):
                            xs[k].grad = None
                            for p in params[k]:
                                p.grad = None

                        def step(k, models=models):
                            models[k](xs[k]).backward(dys[k])

                        t = timed(impl, r, prepare, step,
                                  lambda last, params=params: [("grad %s" % (tuple(p.shape),), p.grad) for p in params[last]])
                        del models, params, layer, a_w, b_w
                    else:
                        adapters = []
                        for k in range(sets):
                            a = torch.empty(r, d, device=dev, dtype=bf16).uniform_(-w_bound, w_bound).requires_grad_()
                            b = torch.empty(d, r, device=dev, dtype=bf16).uniform_(-1.0 / math.sqrt(r),
                                                                                   1.0 / math.sqrt(r)).requires_grad_()
                            adapters.append((a, b))
                        a0, b0 = adapters[0]
                        with torch.no_grad():
                            x_rows = xs[0][rows].float()
                            ref = x_rows @ ws[0].float().t() + gamma * (x_rows @ a0.float().t()) @ b0.float().t()
                        if impl == "eager":
                            fn = lambda x, w, a, b: formula(torch, x, w, a, b, gamma, args.dropout, True)
                            with torch.no_grad():
                                got = formula(torch, xs[0], ws[0], a0, b0, gamma, args.dropout, False)[rows]
                        elif impl == "addmm":
                            fn = lambda x, w, a, b: addmm(x, w, a, b, gamma)
                            with torch.no_grad():
                                got = addmm(xs[0], ws[0], a0, b0, gamma)[rows]
                        else:
                            if "train" not in compiled:
                                compiled["train"] = torch.compile(
                                    lambda x, w, a, b, g: formula(torch, x, w, a, b, g, args.dropout, True), dynamic=False)
                                compiled["eval"] = torch.compile(
                                    lambda x, w, a, b, g: formula(torch, x, w, a, b, g, args.dropout, False), dynamic=False)
                            train_fn = compiled["train"]
                            fn = lambda x, w, a, b: train_fn(x, w, a, b, gamma)
                            try:  # compiles here (lazily): Triton or a C compiler may be missing on the host
                                with torch.no_grad():
                                    got = compiled["eval"](xs[0], ws[0], a0, b0, gamma)[rows]
                                fn(xs[0], ws[0], a0, b0).backward(dys[0])
                            except Exception as e:
                                why = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
                                out.emit({"kind": "skipped", "impl": impl, "reason": "torch.compile failed: " + why})
                                args.impls = [i for i in args.impls if i != "compile"]
                                del adapters, a0, b0
                                continue
                        require_rows_close(torch, "%s Y rows (no dropout)" % impl, got, ref)

                        def prepare(k, adapters=adapters):
                            xs[k].grad = None
                            adapters[k][0].grad = None
                            adapters[k][1].grad = None

                        def step(k, fn=fn, adapters=adapters):
                            fn(xs[k], ws[k], adapters[k][0], adapters[k][1]).backward(dys[k])

                        t = timed(impl, r, prepare, step,
                                  lambda last, adapters=adapters: [("dA", adapters[last][0].grad),
                                                                   ("dB", adapters[last][1].grad)])
                        del adapters, a0, b0
                    torch.cuda.empty_cache()
                del xs, dys, ws
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
