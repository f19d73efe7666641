#!/usr/bin/env python3
"""Golden model data for the mamba-s6 forward pass.

Builds small random-init Mamba / Falcon-Mamba models with Hugging Face
transformers, perturbs their weights so the logits are O(1) (std ~1-3), saves
them with save_pretrained under tests/golden/models/<name>/ and records
float64 reference logits and a float64 greedy continuation.

Reference numerics. transformers' slow path downcasts to float32 in a few
places even when the model is float64 (A = -exp(A_log.float()), B.float() and
u.float() in the scan, RMSNorm's .to(torch.float32), the fp32 residual, the
final logits .float()). While computing the references this script makes
Tensor.float() / Tensor.to(float32) the identity on float64 tensors, so the
whole forward really runs in float64. An independent float64 NumPy forward
written from the math in DESIGN.md section 4 is run too and must agree to
1e-9 relative, which also checks our reading of the HF conventions.

Outputs per model (format read by tests/test_model_golden*.c, keep it):
  config.json, model.safetensors (or shards + model.safetensors.index.json)
  golden.json   {"ids", "vocab_size", "logits_file", "greedy_prompt",
                 "greedy", "greedy_margin_min", "model_type", "dtype", "notes"}
  logits.bin    float32 little-endian, (len(ids), vocab_size), row-major
  ids.txt       the prompt ids on one line, space-separated (for --ids)
  logits_last.txt  the last position's logits, one "%.9g" per line

Usage: python3 tests/make_model_goldens.py [--out tests/golden/models] [--check-only]
Deterministic: every model has a fixed seed (bumped until the greedy path's
smallest top1-top2 margin exceeds MIN_MARGIN).
"""

import argparse
import contextlib
import json
import math
import os
import shutil
import sys

import numpy as np
import torch
import transformers
from transformers import (FalconMambaConfig, FalconMambaForCausalLM, MambaConfig,
                          MambaForCausalLM)

MIN_MARGIN = 1e-3
PROMPT_LEN = 24
GREEDY_PROMPT_LEN = 5
GREEDY_STEPS = 16

# name, model_type, dtype, config overrides, shard size (None = one file)
MODELS = [
    ("mamba_f32_tied", "mamba", "f32",
     dict(hidden_size=32, num_hidden_layers=2, vocab_size=259, state_size=16, conv_kernel=4,
          time_step_rank="auto", use_bias=False, use_conv_bias=True, tie_word_embeddings=True), None),
    ("mamba_f32_untied_bias_n8_k3", "mamba", "f32",
     dict(hidden_size=48, num_hidden_layers=3, vocab_size=509, state_size=8, conv_kernel=3,
          time_step_rank=5, use_bias=True, use_conv_bias=True, tie_word_embeddings=False), None),
    ("mamba_f16_n4_k2_nobias", "mamba", "f16",
     dict(hidden_size=32, num_hidden_layers=2, vocab_size=300, state_size=4, conv_kernel=2,
          time_step_rank=3, use_bias=False, use_conv_bias=False, tie_word_embeddings=True), None),
    ("mamba_bf16_n32_untied", "mamba", "bf16",
     dict(hidden_size=40, num_hidden_layers=2, vocab_size=259, state_size=32, conv_kernel=4,
          time_step_rank="auto", use_bias=False, use_conv_bias=True, tie_word_embeddings=False), None),
    ("mamba_f32_sharded", "mamba", "f32",
     dict(hidden_size=64, num_hidden_layers=2, vocab_size=277, state_size=16, conv_kernel=4,
          time_step_rank=7, use_bias=False, use_conv_bias=True, tie_word_embeddings=True), "40KB"),
    ("falcon_f32_tied", "falcon_mamba", "f32",
     dict(hidden_size=32, num_hidden_layers=2, vocab_size=259, state_size=16, conv_kernel=4,
          time_step_rank="auto", use_bias=False, use_conv_bias=True, tie_word_embeddings=True,
          mixer_rms_eps=1e-6), None),
    ("falcon_bf16_untied_n8_k3", "falcon_mamba", "bf16",
     dict(hidden_size=48, num_hidden_layers=3, vocab_size=311, state_size=8, conv_kernel=3,
          time_step_rank=4, use_bias=True, use_conv_bias=True, tie_word_embeddings=False,
          mixer_rms_eps=1e-5), None),
    ("mamba_f16_untied_n16", "mamba", "f16",
     dict(hidden_size=32, num_hidden_layers=3, vocab_size=263, state_size=16, conv_kernel=4,
          time_step_rank=1, use_bias=True, use_conv_bias=True, tie_word_embeddings=False), None),
]

TORCH_DTYPE = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}


# --------------------------------------------------------------------------
# float64 everywhere: neutralise HF's float32 downcasts while computing refs
# --------------------------------------------------------------------------

@contextlib.contextmanager
def keep_float64():
    orig_float, orig_to = torch.Tensor.float, torch.Tensor.to

    def float_(self, *a, **k):
        if self.dtype == torch.float64:
            return self
        return orig_float(self, *a, **k)

    def to_(self, *a, **k):
        if self.dtype == torch.float64:
            if k.get("dtype") == torch.float32:
                k = dict(k, dtype=torch.float64)
            a = tuple(torch.float64 if x is torch.float32 else x for x in a)
        return orig_to(self, *a, **k)

    torch.Tensor.float, torch.Tensor.to = float_, to_
    try:
        yield
    finally:
        torch.Tensor.float, torch.Tensor.to = orig_float, orig_to


def hf_logits64(model, ids):
    """(L, V) float64 logits of HF's slow path over one sequence."""
    with torch.no_grad(), keep_float64():
        out = model(torch.tensor([ids], dtype=torch.long), use_cache=False)
    assert out.logits.dtype == torch.float64, out.logits.dtype
    return out.logits[0].numpy()


# --------------------------------------------------------------------------
# independent float64 forward (DESIGN.md section 4), used as a cross-check
# --------------------------------------------------------------------------

def softplus(x):
    return np.where(x > 20.0, x, np.log1p(np.exp(np.minimum(x, 20.0))))


def silu(x):
    return x / (1.0 + np.exp(-x))


def rmsnorm(x, w, eps):
    r = x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)
    return r * w if w is not None else r


def numpy_forward(sd, cfg, model_type, ids):
    g = lambda k: sd[k].astype(np.float64)
    d, N, K = cfg["hidden_size"], cfg["state_size"], cfg["conv_kernel"]
    di = cfg["intermediate_size"]
    R = cfg["time_step_rank"]
    eps = cfg["layer_norm_epsilon"]
    x = g("backbone.embeddings.weight")[ids]  # (L, d)
    L = len(ids)
    for i in range(cfg["num_hidden_layers"]):
        p = f"backbone.layers.{i}."
        h = rmsnorm(x, g(p + "norm.weight"), eps)
        xz = h @ g(p + "mixer.in_proj.weight").T
        if cfg["use_bias"]:
            xz = xz + g(p + "mixer.in_proj.bias")
        xin, z = xz[:, :di], xz[:, di:]
        w = g(p + "mixer.conv1d.weight")  # (di, 1, K)
        assert w.shape == (di, 1, K)
        w = w[:, 0, :]
        c = np.zeros((L, di))
        for t in range(L):
            for k in range(K):
                s = t - K + 1 + k
                if s >= 0:
                    c[t] += w[:, k] * xin[s]
        if cfg["use_conv_bias"]:
            c += g(p + "mixer.conv1d.bias")
        u = silu(c)
        xdbl = u @ g(p + "mixer.x_proj.weight").T
        assert xdbl.shape[1] == R + 2 * N
        dtr, B, C = xdbl[:, :R], xdbl[:, R:R + N], xdbl[:, R + N:]
        if model_type == "falcon_mamba":
            me = cfg["mixer_rms_eps"]
            dtr, B, C = rmsnorm(dtr, None, me), rmsnorm(B, None, me), rmsnorm(C, None, me)
        delta = softplus(dtr @ g(p + "mixer.dt_proj.weight").T + g(p + "mixer.dt_proj.bias"))
        A = -np.exp(g(p + "mixer.A_log"))  # (di, N)
        Dv = g(p + "mixer.D")
        hs = np.zeros((di, N))
        y = np.zeros((L, di))
        for t in range(L):
            hs = np.exp(delta[t][:, None] * A) * hs + (delta[t] * u[t])[:, None] * B[t][None, :]
            y[t] = hs @ C[t]
        y = (y + Dv * u) * silu(z)
        out = y @ g(p + "mixer.out_proj.weight").T
        if cfg["use_bias"]:
            out = out + g(p + "mixer.out_proj.bias")
        x = x + out
    x = rmsnorm(x, g("backbone.norm_f.weight"), eps)
    head = g("lm_head.weight") if "lm_head.weight" in sd else g("backbone.embeddings.weight")
    return x @ head.T


# --------------------------------------------------------------------------
# model construction
# --------------------------------------------------------------------------

def inv_softplus(y):
    return y + torch.log(-torch.expm1(-y))


def perturb(model, cfg, gen):
    """Weights that keep activations O(1) and logits std ~1-3."""
    d, di, N, K = cfg.hidden_size, cfg.intermediate_size, cfg.state_size, cfg.conv_kernel
    R = cfg.time_step_rank

    def normal(shape, std):
        return torch.randn(shape, generator=gen, dtype=torch.float64) * std

    def uniform(shape, lo, hi):
        return lo + (hi - lo) * torch.rand(shape, generator=gen, dtype=torch.float64)

    sd = {}
    sd["backbone.embeddings.weight"] = normal((cfg.vocab_size, d), 2.0 / math.sqrt(d))
    for i in range(cfg.num_hidden_layers):
        p = f"backbone.layers.{i}."
        sd[p + "norm.weight"] = uniform((d,), 0.7, 1.3)
        sd[p + "mixer.in_proj.weight"] = normal((2 * di, d), 1.0 / math.sqrt(d))
        sd[p + "mixer.conv1d.weight"] = normal((di, 1, K), 1.0 / math.sqrt(K))
        sd[p + "mixer.x_proj.weight"] = normal((R + 2 * N, di), 1.0 / math.sqrt(di))
        sd[p + "mixer.dt_proj.weight"] = normal((di, R), 1.0 / math.sqrt(R))
        dt = torch.exp(uniform((di,), math.log(1e-3), math.log(1e-1)))
        sd[p + "mixer.dt_proj.bias"] = inv_softplus(dt)
        sd[p + "mixer.A_log"] = torch.log(uniform((di, N), 1.0, 16.0))
        sd[p + "mixer.D"] = uniform((di,), 0.5, 1.5)
        sd[p + "mixer.out_proj.weight"] = normal((d, di), 1.0 / math.sqrt(di))
        if cfg.use_conv_bias:
            sd[p + "mixer.conv1d.bias"] = normal((di,), 0.2)
        if cfg.use_bias:
            sd[p + "mixer.in_proj.bias"] = normal((2 * di,), 0.2)
            sd[p + "mixer.out_proj.bias"] = normal((d,), 0.2)
    sd["backbone.norm_f.weight"] = uniform((d,), 0.7, 1.3)
    if not cfg.tie_word_embeddings:
        sd["lm_head.weight"] = normal((cfg.vocab_size, d), 2.0 / math.sqrt(d))

    params = dict(model.named_parameters())
    for k, v in sd.items():
        assert k in params, f"unexpected tensor name {k}"
        assert tuple(params[k].shape) == tuple(v.shape), (k, params[k].shape, v.shape)
        with torch.no_grad():
            params[k].copy_(v.to(params[k].dtype))
    missing = [k for k in params if k not in sd and not (k == "lm_head.weight" and cfg.tie_word_embeddings)]
    assert not missing, f"parameters not perturbed: {missing}"


def build(model_type, overrides, dtype, seed):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    Cfg, Model = (MambaConfig, MambaForCausalLM) if model_type == "mamba" else \
        (FalconMambaConfig, FalconMambaForCausalLM)
    cfg = Cfg(expand=2, layer_norm_epsilon=1e-5, residual_in_fp32=True, **overrides)
    model = Model(cfg).to(torch.float64).eval()
    perturb(model, cfg, gen)
    # Round to the storage dtype, then back up to float64 exactly.
    model = model.to(TORCH_DTYPE[dtype]).to(torch.float64).eval()
    return cfg, model


def state_dict_np(model, cfg):
    sd = {k: v.detach().numpy().astype(np.float64) for k, v in model.state_dict().items()}
    if cfg.tie_word_embeddings:
        sd.pop("lm_head.weight", None)
    return sd


def greedy(model, prompt, steps):
    seq, out, margin = list(prompt), [], float("inf")
    for _ in range(steps):
        last = hf_logits64(model, seq)[-1]
        order = np.argsort(-last, kind="stable")
        margin = min(margin, float(last[order[0]] - last[order[1]]))
        nxt = int(order[0])
        out.append(nxt)
        seq.append(nxt)
    return out, margin


def make_one(root, name, model_type, dtype, overrides, shard, seed0):
    for seed in range(seed0, seed0 + 50):
        cfg, model = build(model_type, overrides, dtype, seed)
        rng = np.random.default_rng(seed)
        V = cfg.vocab_size
        ids = [int(t) for t in rng.integers(0, V, PROMPT_LEN)]
        gprompt = [int(t) for t in rng.integers(0, V, GREEDY_PROMPT_LEN)]
        g, margin = greedy(model, gprompt, GREEDY_STEPS)
        if margin > MIN_MARGIN:
            break
        print(f"  {name}: seed {seed} greedy margin {margin:.2e} too small, next seed")
    else:
        raise RuntimeError(f"{name}: no seed with margin > {MIN_MARGIN}")

    logits = hf_logits64(model, ids)
    cfgd = cfg.to_dict()
    ref = numpy_forward(state_dict_np(model, cfg), cfgd, model_type, ids)
    rel = np.linalg.norm(logits - ref) / np.linalg.norm(ref)
    assert rel < 1e-9, f"{name}: HF float64 vs numpy float64 rel {rel:.3e}"
    with torch.no_grad():
        plain = model(torch.tensor([ids]), use_cache=False).logits[0].double().numpy()
    rel_plain = np.linalg.norm(plain - logits) / np.linalg.norm(logits)

    out = os.path.join(root, name)
    shutil.rmtree(out, ignore_errors=True)
    save_model = model.to(TORCH_DTYPE[dtype])
    kw = {"max_shard_size": shard} if shard else {}
    save_model.save_pretrained(out, safe_serialization=True, **kw)
    model = model.to(torch.float64)
    for f in os.listdir(out):  # keep only what a checkpoint directory needs
        if f not in ("config.json",) and not f.startswith("model"):
            os.remove(os.path.join(out, f))

    logits.astype("<f4").tofile(os.path.join(out, "logits.bin"))
    with open(os.path.join(out, "ids.txt"), "w") as f:
        f.write(" ".join(map(str, ids)) + "\n")
    with open(os.path.join(out, "logits_last.txt"), "w") as f:
        f.writelines("%.9g\n" % v for v in logits[-1])
    std = float(np.std(logits))
    notes = (f"transformers {transformers.__version__}, torch {torch.__version__}; seed {seed}; "
             f"d_model {cfg.hidden_size}, n_layer {cfg.num_hidden_layers}, d_state {cfg.state_size}, "
             f"d_conv {cfg.conv_kernel}, dt_rank {cfg.time_step_rank}, use_bias {cfg.use_bias}, "
             f"use_conv_bias {cfg.use_conv_bias}, tied {cfg.tie_word_embeddings}, "
             f"sharded {bool(shard)}; logits std {std:.3f}; "
             f"HF slow path without the float64 patch differs by rel {rel_plain:.2e}")
    golden = {
        "ids": ids, "vocab_size": V, "logits_file": "logits.bin",
        "greedy_prompt": gprompt, "greedy": g, "greedy_margin_min": margin,
        "model_type": model_type, "dtype": dtype, "notes": notes,
    }
    with open(os.path.join(out, "golden.json"), "w") as f:
        json.dump(golden, f, indent=1)
        f.write("\n")
    print(f"{name}: seed {seed}, logits std {std:.3f}, greedy margin {margin:.3e}, "
          f"HF vs numpy rel {rel:.1e}, HF-unpatched rel {rel_plain:.1e}")
    return out


def check_reload(out, model_type):
    """Loads the saved directory back with transformers and recomputes."""
    with open(os.path.join(out, "golden.json")) as f:
        g = json.load(f)
    Model = MambaForCausalLM if model_type == "mamba" else FalconMambaForCausalLM
    m = Model.from_pretrained(out).to(torch.float64).eval()
    assert str(next(iter(Model.from_pretrained(out).parameters())).dtype) == \
        str(TORCH_DTYPE[g["dtype"]]), "stored dtype mismatch"
    got = hf_logits64(m, g["ids"])
    want = np.fromfile(os.path.join(out, "logits.bin"), dtype="<f4").reshape(len(g["ids"]), g["vocab_size"])
    err = np.max(np.abs(got - want)) / np.max(np.abs(want))
    assert err < 1e-6, f"{out}: reload mismatch {err:.3e}"
    gg, _ = greedy(m, g["greedy_prompt"], len(g["greedy"]))
    assert gg == g["greedy"], f"{out}: reload greedy mismatch"
    print(f"  reload ok: {os.path.basename(out)} (max rel {err:.1e})")


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "golden", "models"))
    ap.add_argument("--check-only", action="store_true", help="only reload and verify")
    a = ap.parse_args()
    torch.set_num_threads(1)
    os.makedirs(a.out, exist_ok=True)
    for idx, (name, mt, dt, ov, shard) in enumerate(MODELS):
        out = os.path.join(a.out, name)
        if not a.check_only:
            make_one(a.out, name, mt, dt, ov, shard, 1000 + 100 * idx)
        check_reload(out, mt)
    return 0


if __name__ == "__main__":
    sys.exit(main())
