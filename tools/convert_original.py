#!/usr/bin/env python3
"""Convert an original state-spaces Mamba checkpoint to a directory mamba-s6
(and transformers) loads.

Input: a directory with config.json + pytorch_model.bin as published in the
state-spaces/mamba-* repositories (config keys d_model, n_layer, vocab_size,
ssm_cfg, rms_norm, residual_in_fp32, pad_vocab_size_multiple; tensors
backbone.embedding.weight, backbone.layers.{i}.mixer.*,
backbone.layers.{i}.norm.weight, backbone.norm_f.weight, lm_head.weight).

Output directory:
  config.json           converted to the transformers *-hf keys (MambaConfig):
                        hidden_size, intermediate_size, state_size,
                        num_hidden_layers, conv_kernel, expand, time_step_rank,
                        layer_norm_epsilon, use_bias, use_conv_bias,
                        residual_in_fp32, vocab_size (the PADDED vocabulary,
                        = embedding rows, as in state-spaces/mamba-*-hf),
                        tie_word_embeddings
  original_config.json  the input config.json, byte for byte
  model.safetensors     tensors renamed to the -hf names:
                        backbone.embedding.weight -> backbone.embeddings.weight;
                        lm_head.weight dropped when it equals the embedding
                        (tied), kept otherwise (tie_word_embeddings false)

The pickle is read with torch.load(..., weights_only=True) only: it can
hold tensors and plain containers, never arbitrary code; anything else is
refused with an error. Mamba-2 checkpoints (ssm_cfg.layer == "Mamba2") and
LayerNorm models (rms_norm false) are refused: mamba-s6 runs Mamba-1 with
RMSNorm.

usage: python3 tools/convert_original.py IN_DIR_OR_BIN OUT_DIR [--dtype keep|f32|f16|bf16]
"""

import argparse
import json
import math
import os
import pickle
import shutil
import sys


def fail(msg):
    print(f"convert_original: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src", help="checkpoint directory, or the pytorch_model.bin (config.json beside it)")
    ap.add_argument("out", help="output directory (created)")
    ap.add_argument("--dtype", default="keep", choices=["keep", "f32", "f16", "bf16"],
                    help="storage dtype of the output tensors (default: as stored)")
    a = ap.parse_args()

    if os.path.isdir(a.src):
        src_dir, bin_path = a.src, os.path.join(a.src, "pytorch_model.bin")
    else:
        src_dir, bin_path = os.path.dirname(os.path.abspath(a.src)), a.src
    cfg_path = os.path.join(src_dir, "config.json")
    for p in (cfg_path, bin_path):
        if not os.path.isfile(p):
            fail(f"{p}: not found")
    try:
        with open(cfg_path, "rb") as f:
            cfg_bytes = f.read()
        cfg = json.loads(cfg_bytes)
    except (OSError, ValueError) as e:
        fail(f"{cfg_path}: cannot parse: {e}")
    if not isinstance(cfg, dict):
        fail(f"{cfg_path}: not a JSON object")

    def key(name, default=None, required=False):
        if name in cfg:
            return cfg[name]
        if required:
            fail(f"{cfg_path}: missing key '{name}' (is this an original state-spaces config?)")
        return default

    d_model = key("d_model", required=True)
    n_layer = key("n_layer", required=True)
    vocab_cfg = key("vocab_size", required=True)
    ssm = key("ssm_cfg", {}) or {}
    if not isinstance(ssm, dict):
        fail(f"{cfg_path}: ssm_cfg is not an object")
    if ssm.get("layer", "Mamba1") != "Mamba1":
        fail(f"{cfg_path}: ssm_cfg.layer is {ssm.get('layer')!r}; only Mamba-1 is supported")
    if not key("rms_norm", True):
        fail(f"{cfg_path}: rms_norm is false (LayerNorm); only RMSNorm models are supported")
    for n, v in (("d_model", d_model), ("n_layer", n_layer), ("vocab_size", vocab_cfg)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            fail(f"{cfg_path}: {n} must be a positive integer, got {v!r}")

    try:
        import torch
        from safetensors.torch import save_file
    except ImportError as e:
        fail(f"needs torch and safetensors ({e}); pip install torch safetensors")
    try:
        sd = torch.load(bin_path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # not a zip-format file (mmap needs one), or refused: retry without mmap
        try:
            sd = torch.load(bin_path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            why = [ln.strip() for ln in str(e).splitlines() if "GLOBAL" in ln or "Unsupported" in ln]
            fail(f"{bin_path}: refused: the pickle holds more than tensors and plain containers "
                 f"(loaded with weights_only=True only){': ' + why[0] if why else ''}")
        except Exception as e:
            fail(f"{bin_path}: cannot read as a torch checkpoint: {type(e).__name__}: "
                 f"{str(e).splitlines()[0] if str(e) else ''}")
    if isinstance(sd, dict) and "model" in sd and isinstance(sd["model"], dict) and \
            not any(isinstance(v, torch.Tensor) for v in sd.values()):
        sd = sd["model"]
    if not isinstance(sd, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                           for k, v in sd.items()):
        fail(f"{bin_path}: expected a state dict (names -> tensors)")

    def get(name, shape=None):
        if name not in sd:
            fail(f"{bin_path}: missing tensor '{name}'")
        t = sd[name]
        if shape is not None and tuple(t.shape) != tuple(shape):
            fail(f"{bin_path}: tensor '{name}' has shape {tuple(t.shape)}, expected {tuple(shape)}")
        if t.dtype not in (torch.float32, torch.float16, torch.bfloat16):
            fail(f"{bin_path}: tensor '{name}' has dtype {t.dtype}; expected float32/float16/bfloat16")
        return t

    emb = get("backbone.embedding.weight")
    if emb.dim() != 2 or emb.shape[1] != d_model:
        fail(f"{bin_path}: backbone.embedding.weight has shape {tuple(emb.shape)}, expected (vocab, {d_model})")
    vocab = emb.shape[0]
    pad = key("pad_vocab_size_multiple", 1)
    want_vocab = vocab_cfg + (-vocab_cfg) % pad if isinstance(pad, int) and pad > 0 else vocab_cfg
    if vocab != want_vocab:
        fail(f"{bin_path}: embedding has {vocab} rows; config vocab_size {vocab_cfg} padded to a multiple "
             f"of {pad} is {want_vocab}")

    d_state = ssm.get("d_state", 16)
    d_conv = ssm.get("d_conv", 4)
    expand = ssm.get("expand", 2)
    dt_rank = ssm.get("dt_rank", "auto")
    dt_rank = math.ceil(d_model / 16) if dt_rank == "auto" else dt_rank
    use_conv_bias = bool(ssm.get("conv_bias", True))
    use_bias = bool(ssm.get("bias", False))
    d_inner = int(expand * d_model)
    eps = float(key("norm_epsilon", 1e-5))

    out = {"backbone.embeddings.weight": emb}
    for i in range(n_layer):
        p = f"backbone.layers.{i}."
        m = p + "mixer."
        out[p + "norm.weight"] = get(p + "norm.weight", (d_model,))
        out[m + "in_proj.weight"] = get(m + "in_proj.weight", (2 * d_inner, d_model))
        out[m + "conv1d.weight"] = get(m + "conv1d.weight", (d_inner, 1, d_conv))
        out[m + "x_proj.weight"] = get(m + "x_proj.weight", (dt_rank + 2 * d_state, d_inner))
        out[m + "dt_proj.weight"] = get(m + "dt_proj.weight", (d_inner, dt_rank))
        out[m + "dt_proj.bias"] = get(m + "dt_proj.bias", (d_inner,))
        out[m + "A_log"] = get(m + "A_log", (d_inner, d_state))
        out[m + "D"] = get(m + "D", (d_inner,))
        out[m + "out_proj.weight"] = get(m + "out_proj.weight", (d_model, d_inner))
        if use_conv_bias:
            out[m + "conv1d.bias"] = get(m + "conv1d.bias", (d_inner,))
        if use_bias:
            out[m + "in_proj.bias"] = get(m + "in_proj.bias", (2 * d_inner,))
            out[m + "out_proj.bias"] = get(m + "out_proj.bias", (d_model,))
    out["backbone.norm_f.weight"] = get("backbone.norm_f.weight", (d_model,))
    tied = True
    if "lm_head.weight" in sd:
        head = get("lm_head.weight", (vocab, d_model))
        if not torch.equal(head, emb):
            tied = False
            out["lm_head.weight"] = head
    if not tied and key("tie_embeddings", None) is True:
        print("convert_original: note: config says tie_embeddings but lm_head.weight differs; kept it",
              file=sys.stderr)
    used = set(out) | {"backbone.embedding.weight", "lm_head.weight"}
    extra = sorted(k for k in sd if k not in used)
    if extra:
        fail(f"{bin_path}: unexpected tensors (not a Mamba-1 checkpoint of this config?): {extra[:5]}")

    cast = {"keep": None, "f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}[a.dtype]
    tensors = {}
    for k, t in out.items():
        t = t.to(cast) if cast is not None else t
        tensors[k] = t.contiguous().clone()  # own storage: safetensors refuses shared tensors

    st_dtype = next(iter(tensors.values())).dtype
    hf = {
        "architectures": ["MambaForCausalLM"],
        "model_type": "mamba",
        "vocab_size": vocab,
        "hidden_size": d_model,
        "intermediate_size": d_inner,
        "state_size": d_state,
        "num_hidden_layers": n_layer,
        "conv_kernel": d_conv,
        "expand": expand,
        "time_step_rank": dt_rank,
        "layer_norm_epsilon": eps,
        "use_bias": use_bias,
        "use_conv_bias": use_conv_bias,
        "residual_in_fp32": bool(key("residual_in_fp32", True)),
        "tie_word_embeddings": tied,
        "hidden_act": "silu",
        "bos_token_id": 0,
        "eos_token_id": 0,
        "pad_token_id": 0,
        "torch_dtype": str(st_dtype).replace("torch.", ""),
    }
    os.makedirs(a.out, exist_ok=True)
    save_file(tensors, os.path.join(a.out, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(hf, f, indent=2)
        f.write("\n")
    with open(os.path.join(a.out, "original_config.json"), "wb") as f:
        f.write(cfg_bytes)
    for extra_file in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if os.path.isfile(os.path.join(src_dir, extra_file)):
            shutil.copy(os.path.join(src_dir, extra_file), a.out)
    n_params = sum(t.numel() for t in tensors.values())
    print(f"wrote {a.out}: {len(tensors)} tensors, {n_params / 1e6:.2f} M params, {st_dtype}, "
          f"vocab {vocab}, {'tied' if tied else 'untied'} head")
    return 0


if __name__ == "__main__":
    sys.exit(main())
