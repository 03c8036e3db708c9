#!/usr/bin/env python3
"""Golden files for the PEFT interoperability tests, from an implementation independent of the
Java code: plain PyTorch and the formulas of SPEC.md §6 and §8, with PEFT's own rules for
rank_pattern / alpha_pattern (peft.utils.other.get_pattern_key) and the merge PEFT performs
(lora.Linear.get_delta_weight, then `base_layer.weight.data += delta_weight`).

Writes, under OUT (default: ../resources/golden next to this script):
  base-bf16.safetensors, base-f32.safetensors   a tiny Llama-style checkpoint (2 layers, GQA k/v,
                                                an F32 buffer and an I64 tensor to test raw copies)
  base-bf16-sharded/                            the bf16 checkpoint in 2 shards + model.safetensors.index.json
  base-gpt2-f32.safetensors                     a tiny GPT-2-style checkpoint (Conv1D c_attn [in, out])
  adapter-rslora/        F32, use_rslora, rank_pattern/alpha_pattern, modules_to_save lm_head
  adapter-rslora-bf16/   the same adapter stored BF16;  adapter-rslora-f16/: stored F16
  adapter-lora/          the same A/B with use_rslora false and no lm_head
  adapter-gpt2/          fan_in_fan_out true, SEQ_CLS head saved as base_model.model.score.weight
  expected/merged-*.safetensors                 every tensor of the merged checkpoint
  expected/modules-*.json                       r, alpha and gamma per module as PEFT resolves them
  expected/init-adapter_config.json             the config `rslora init` must write for the
                                                arguments in INIT_ARGS (see the Java test)

A and B hold multiples of 2^-10 with |k| <= 64 and r <= 8, so every product and partial sum of
B·A is exact in fp32 whatever the summation order; the merge then rounds the same fp32 operations
in both implementations: delta = fl32(fl32(B·A) * fl32(gamma)), W' = round_dtype(fl32(W + delta)).

Run: /usr/bin/python3 java/core/src/test/python/make_golden.py  (needs only torch; the Debian
python3-torch package is enough). The outputs are deterministic for a given torch version.
"""
import json
import math
import os
import re
import shutil
import struct
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "resources", "golden"))

# safetensors dtype names in the reference implementation's enum order (the writer sorts
# tensors by this order, largest first, then by name)
DTYPE_ORDER = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16", "I32", "U32",
               "F32", "F64", "I64", "U64"]
TORCH_DTYPES = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16", torch.int64: "I64"}


def tensor_bytes(t):
    t = t.contiguous()
    if t.dtype in (torch.bfloat16, torch.float16):
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    if t.dtype == torch.float32:
        return t.numpy().astype("<f4").tobytes()
    if t.dtype == torch.int64:
        return t.numpy().astype("<i8").tobytes()
    raise ValueError(t.dtype)


def save_safetensors(path, tensors, metadata=None):
    """The safetensors layout: u64 LE header length, compact JSON header padded with spaces to a
    multiple of 8, then the tensors in (dtype order descending, name) order."""
    names = sorted(tensors, key=lambda n: (-DTYPE_ORDER.index(TORCH_DTYPES[tensors[n].dtype]), n))
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    blobs = []
    offset = 0
    for n in names:
        b = tensor_bytes(tensors[n])
        header[n] = {"dtype": TORCH_DTYPES[tensors[n].dtype], "shape": list(tensors[n].shape),
                     "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def write_json(path, obj, trailing_newline):
    """As PEFT (adapter_config.json) and transformers (index) write JSON: sorted keys, indent 2."""
    with open(path, "w") as f:
        f.write(json.dumps(obj, indent=2, sort_keys=True))
        if trailing_newline:
            f.write("\n")


def dyadic(gen, *shape):
    """Multiples of 2^-10 with |k| <= 64: exact in F32, BF16 and F16, exact products and sums."""
    return torch.randint(-64, 65, shape, generator=gen).to(torch.float32) / 1024.0


# ---------------------------------------------------------------- base checkpoints

HIDDEN, INTER, KV, VOCAB, LAYERS = 16, 24, 8, 32, 2


def llama_base(gen):
    """Tensor name -> F32 values, in a Llama-style naming (LlamaForCausalLM.state_dict())."""
    t = {"model.embed_tokens.weight": torch.randn(VOCAB, HIDDEN, generator=gen) * 0.05}
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = 1 + 0.1 * torch.randn(HIDDEN, generator=gen)
        t[p + "post_attention_layernorm.weight"] = 1 + 0.1 * torch.randn(HIDDEN, generator=gen)
        t[p + "self_attn.q_proj.weight"] = torch.randn(HIDDEN, HIDDEN, generator=gen) * 0.05
        t[p + "self_attn.k_proj.weight"] = torch.randn(KV, HIDDEN, generator=gen) * 0.05
        t[p + "self_attn.v_proj.weight"] = torch.randn(KV, HIDDEN, generator=gen) * 0.05
        t[p + "self_attn.o_proj.weight"] = torch.randn(HIDDEN, HIDDEN, generator=gen) * 0.05
        t[p + "mlp.gate_proj.weight"] = torch.randn(INTER, HIDDEN, generator=gen) * 0.05
        t[p + "mlp.up_proj.weight"] = torch.randn(INTER, HIDDEN, generator=gen) * 0.05
        t[p + "mlp.down_proj.weight"] = torch.randn(HIDDEN, INTER, generator=gen) * 0.05
    t["model.norm.weight"] = 1 + 0.1 * torch.randn(HIDDEN, generator=gen)
    t["lm_head.weight"] = torch.randn(VOCAB, HIDDEN, generator=gen) * 0.05
    return t


def in_dtype(base, dtype):
    out = {n: v.to(dtype) for n, v in base.items()}
    # older Llama checkpoints kept this buffer in F32 next to BF16 weights; the I64 tensor has
    # no arithmetic view at all: both must be copied byte for byte by a merge
    out["model.layers.0.self_attn.rotary_emb.inv_freq"] = 1.0 / (10000 ** (torch.arange(0, 8, 2).float() / 8))
    out["model.position_ids"] = torch.arange(8, dtype=torch.int64).reshape(1, 8)
    return out


SHARD_1 = "model-00001-of-00002.safetensors"
SHARD_2 = "model-00002-of-00002.safetensors"


def shard_of(name):
    return SHARD_1 if name.startswith("model.embed_tokens") or name.startswith("model.layers.0.") \
        or name == "model.position_ids" else SHARD_2


def save_sharded(folder, tensors):
    os.makedirs(folder)
    parts = {SHARD_1: {}, SHARD_2: {}}
    for n, v in tensors.items():
        parts[shard_of(n)][n] = v
    for file, part in parts.items():
        save_safetensors(os.path.join(folder, file), part, {"format": "pt"})
    total = sum(len(tensor_bytes(v)) for v in tensors.values())
    index = {"metadata": {"total_size": total}, "weight_map": {n: shard_of(n) for n in sorted(tensors)}}
    write_json(os.path.join(folder, "model.safetensors.index.json"), index, trailing_newline=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        f.write('{"model_type": "llama", "hidden_size": 16}\n')


# ---------------------------------------------------------------- PEFT rules

def get_pattern_key(pattern_keys, key_to_match):
    """peft.utils.other.get_pattern_key: the first key, in file order, with
    re.match(rf"(.*\\.)?({key})$", module path); else the path itself."""
    for key in pattern_keys:
        if re.match(rf"(.*\.)?({key})$", key_to_match):
            return key
    return key_to_match


def check_target(target_modules, key):
    """peft check_target_module_exists, list form (no layer filters in these configs)."""
    if isinstance(target_modules, str):
        return re.fullmatch(target_modules, key) is not None
    return key in target_modules or any(key.endswith("." + t) for t in target_modules)


def module_params(cfg, path):
    r = cfg["rank_pattern"].get(get_pattern_key(cfg["rank_pattern"].keys(), path), cfg["r"])
    alpha = cfg["alpha_pattern"].get(get_pattern_key(cfg["alpha_pattern"].keys(), path), cfg["lora_alpha"])
    gamma = alpha / math.sqrt(r) if cfg.get("use_rslora", False) else alpha / r
    return r, alpha, gamma


def peft_config(**fields):
    """The fields PEFT 0.14's LoraConfig.to_dict() writes, with its defaults."""
    cfg = {
        "alpha_pattern": {}, "auto_mapping": None, "base_model_name_or_path": None, "bias": "none",
        "eva_config": None, "exclude_modules": None, "fan_in_fan_out": False, "inference_mode": True,
        "init_lora_weights": True, "layer_replication": None, "layers_pattern": None,
        "layers_to_transform": None, "loftq_config": {}, "lora_alpha": 8, "lora_bias": False,
        "lora_dropout": 0.0, "megatron_config": None, "megatron_core": "megatron.core",
        "modules_to_save": None, "peft_type": "LORA", "r": 8, "rank_pattern": {}, "revision": None,
        "target_modules": None, "task_type": None, "use_dora": False, "use_rslora": False,
    }
    cfg.update(fields)
    return cfg


def make_adapter(base, cfg, gen, fan_in_fan_out=False):
    """module path -> (A [r, in], B [out, r]) for every targeted 2-D weight of `base`."""
    mods = {}
    for name in sorted(base):
        if not name.endswith(".weight") or base[name].dim() != 2:
            continue
        path = name[: -len(".weight")]
        if not check_target(cfg["target_modules"], path):
            continue
        r, _, _ = module_params(cfg, path)
        rows, cols = base[name].shape
        d_out, d_in = (cols, rows) if fan_in_fan_out else (rows, cols)
        mods[path] = (dyadic(gen, r, d_in), dyadic(gen, d_out, r))
    return mods


def save_adapter(folder, cfg, mods, extra, dtype):
    """Writes the adapter folder and returns its config as PEFT reads it back (file order)."""
    os.makedirs(folder)
    tensors = {}
    for path, (a, b) in mods.items():
        tensors[f"base_model.model.{path}.lora_A.weight"] = a.to(dtype)
        tensors[f"base_model.model.{path}.lora_B.weight"] = b.to(dtype)
    for name, v in extra.items():
        tensors[f"base_model.model.{name}"] = v.to(dtype)
    save_safetensors(os.path.join(folder, "adapter_model.safetensors"), tensors, {"format": "pt"})
    write_json(os.path.join(folder, "adapter_config.json"), cfg, trailing_newline=False)
    with open(os.path.join(folder, "adapter_config.json")) as f:
        return json.load(f)


def merge(base, cfg, mods, extra):
    """PEFT merge_and_unload: W += transpose(B @ A, fan_in_fan_out) * scaling (fp32 adapter,
    weight in its own dtype: the in-place add computes in fp32 and rounds once), and
    modules_to_save / the SEQ_CLS head replace the base tensor (cast to its dtype)."""
    out = dict(base)
    for path, (a, b) in mods.items():
        _, _, gamma = module_params(cfg, path)
        delta = (b.float() @ a.float()) * torch.tensor(gamma, dtype=torch.float32)
        if cfg["fan_in_fan_out"]:
            delta = delta.T
        w = base[path + ".weight"]
        out[path + ".weight"] = (w.float() + delta).to(w.dtype)
    for name, v in extra.items():
        out[name] = v.to(base[name].dtype)
    return out


def module_table(cfg, mods):
    table = {}
    for path in mods:
        r, alpha, gamma = module_params(cfg, path)
        table[path] = {"r": r, "alpha": alpha, "gamma": gamma}
    return table


# ---------------------------------------------------------------- main

def main():
    if os.path.exists(OUT):
        shutil.rmtree(OUT)
    os.makedirs(os.path.join(OUT, "expected"))
    gen = torch.Generator().manual_seed(20240501)

    base32 = llama_base(gen)
    bases = {"bf16": in_dtype(base32, torch.bfloat16), "f32": in_dtype(base32, torch.float32)}
    save_safetensors(os.path.join(OUT, "base-bf16.safetensors"), bases["bf16"], {"format": "pt"})
    save_safetensors(os.path.join(OUT, "base-f32.safetensors"), bases["f32"], {"format": "pt"})
    save_sharded(os.path.join(OUT, "base-bf16-sharded"), bases["bf16"])

    # rsLoRA with patterns. PEFT writes the config with sort_keys=True, which sorts the pattern
    # dicts too, and resolves patterns in the order of the file it loads: the expectations below
    # are computed from the config as read back from disk. rank_pattern in file order: the first
    # key never matches (^ anchors it to the path start, and paths start with "model."); the
    # second pins one module to r = 8. alpha_pattern in file order: "layers.1.self_attn.v_proj"
    # comes first and wins for layer 1 over the longer, more specific "model.layers.1..." key.
    rs_cfg = peft_config(
        r=4, lora_alpha=8, use_rslora=True, target_modules=["q_proj", "v_proj", "down_proj"],
        rank_pattern={"^layers.0.self_attn.q_proj": 6, "^model.layers.1.self_attn.q_proj": 8, "down_proj": 2},
        alpha_pattern={"v_proj": 3.5, "model.layers.1.self_attn.v_proj": 50, "layers.1.self_attn.v_proj": 100},
        modules_to_save=["lm_head"], task_type="CAUSAL_LM", base_model_name_or_path="tiny-llama")
    rs_cfg = json.loads(json.dumps(rs_cfg, sort_keys=True))  # the order PEFT will load
    mods = make_adapter(base32, rs_cfg, gen)
    # the saved head is dyadic too, so the BF16/F16 copies of the adapter hold exactly the same values
    head = {"lm_head.weight": dyadic(gen, VOCAB, HIDDEN)}
    assert save_adapter(os.path.join(OUT, "adapter-rslora"), rs_cfg, mods, head, torch.float32) == rs_cfg
    save_adapter(os.path.join(OUT, "adapter-rslora-bf16"), rs_cfg, mods, head, torch.bfloat16)
    save_adapter(os.path.join(OUT, "adapter-rslora-f16"), rs_cfg, mods, head, torch.float16)
    write_json(os.path.join(OUT, "expected", "modules-rslora.json"), module_table(rs_cfg, mods), True)
    for dt in ("bf16", "f32"):
        # the BF16/F16 adapters hold the same values (exact in both), so one expectation serves all
        save_safetensors(os.path.join(OUT, "expected", f"merged-rslora-{dt}.safetensors"),
                         merge(bases[dt], rs_cfg, mods, head), {"format": "pt"})

    lora_cfg = dict(rs_cfg, use_rslora=False, modules_to_save=None)
    lora_cfg = save_adapter(os.path.join(OUT, "adapter-lora"), lora_cfg, mods, {}, torch.float32)
    write_json(os.path.join(OUT, "expected", "modules-lora.json"), module_table(lora_cfg, mods), True)
    save_safetensors(os.path.join(OUT, "expected", "merged-lora-bf16.safetensors"),
                     merge(bases["bf16"], lora_cfg, mods, {}), {"format": "pt"})

    # GPT-2 style: Conv1D weights stored [in, out], PEFT fan_in_fan_out=True; SEQ_CLS head
    gpt2 = {}
    for i in range(2):
        gpt2[f"transformer.h.{i}.attn.c_attn.weight"] = torch.randn(HIDDEN, 3 * HIDDEN, generator=gen) * 0.05
        gpt2[f"transformer.h.{i}.attn.c_attn.bias"] = torch.randn(3 * HIDDEN, generator=gen) * 0.05
        gpt2[f"transformer.h.{i}.attn.c_proj.weight"] = torch.randn(HIDDEN, HIDDEN, generator=gen) * 0.05
    gpt2["transformer.wte.weight"] = torch.randn(VOCAB, HIDDEN, generator=gen) * 0.05
    gpt2["score.weight"] = torch.randn(3, HIDDEN, generator=gen) * 0.05
    save_safetensors(os.path.join(OUT, "base-gpt2-f32.safetensors"), gpt2, {"format": "pt"})
    g_cfg = peft_config(r=4, lora_alpha=8, fan_in_fan_out=True, target_modules=["c_attn"],
                        task_type="SEQ_CLS", base_model_name_or_path="tiny-gpt2")
    g_mods = make_adapter(gpt2, g_cfg, gen, fan_in_fan_out=True)
    g_head = {"score.weight": torch.randn(3, HIDDEN, generator=gen) * 0.05}
    g_cfg = save_adapter(os.path.join(OUT, "adapter-gpt2"), g_cfg, g_mods, g_head, torch.float32)
    save_safetensors(os.path.join(OUT, "expected", "merged-gpt2-f32.safetensors"),
                     merge(gpt2, g_cfg, g_mods, g_head), {"format": "pt"})

    # what `rslora init --base BASE --target-modules q_proj,v_proj --rank 4 --alpha 16
    # --init gaussian` writes (base_model_name_or_path is the BASE argument, replaced by the test)
    init_cfg = {
        "alpha_pattern": {}, "base_model_name_or_path": "BASE", "bias": "none", "fan_in_fan_out": False,
        "inference_mode": True, "init_lora_weights": "gaussian", "lora_alpha": 16, "lora_bias": False,
        "lora_dropout": 0.0, "modules_to_save": None, "peft_type": "LORA", "r": 4, "rank_pattern": {},
        "target_modules": ["q_proj", "v_proj"], "task_type": None, "use_dora": False, "use_rslora": True,
    }
    write_json(os.path.join(OUT, "expected", "init-adapter_config.json"), init_cfg, trailing_newline=False)

    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(OUT) for f in fs)
    print(f"wrote {OUT} ({total} bytes), torch {torch.__version__}")


if __name__ == "__main__":
    main()
