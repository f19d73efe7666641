#!/usr/bin/env bash
# tools/convert_original.py: builds fake original state-spaces checkpoints
# with torch (random weights, fresh each run), converts them and checks the
# output tensors, names and config; with transformers installed, also that
# transformers runs the converted model to the same logits as an independent
# float64 forward over the ORIGINAL tensors, and so does `mamba-s6 logits`
# (when this build has it). Then bad inputs, including a pickle that carries
# code (must be refused by weights_only=True without running it).
# Skips (77) when python3 cannot import torch + safetensors (CI has no torch).
# usage: bash cli_convert.sh <mamba-s6 binary> <source dir>
set -u
BIN=$1
SRC=$2
PY=${PYTHON:-python3}
if ! "$PY" -c "import torch, safetensors, numpy" 2>/dev/null; then
    echo "skip: torch/safetensors/numpy not importable"
    exit 77
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
CONV="$SRC/tools/convert_original.py"
fail=0
die() { echo "FAIL: $*" >&2; fail=1; }

# Runs the converter in ONE python process for several argument lists (each
# process importing torch costs seconds). Each case is 'ok|what|arg|arg...'
# (must return 0) or 'bad|what|arg|...' (must exit non-zero with a
# "convert_original:" message and no traceback).
convert_cases() {
    "$PY" - "$CONV" "$@" <<'PYEOF'
import contextlib, io, runpy, sys, traceback
conv, cases = sys.argv[1], sys.argv[2:]
bad = 0
for case in cases:
    mode, what, *args = case.split("|")
    err = io.StringIO()
    sys.argv = [conv] + args
    code = 0
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            runpy.run_path(conv, run_name="__main__")
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except Exception:
        code = -1
        err.write(traceback.format_exc())
    msg = err.getvalue()
    ok = code == 0 if mode == "ok" else (code not in (0, -1) and "convert_original:" in msg)
    if not ok:
        print(f"FAIL: {what}: exit {code}: {msg[-800:]}", file=sys.stderr)
        bad = 1
sys.exit(bad)
PYEOF
}

# --- fake checkpoints -------------------------------------------------------
# tied: vocab 50 padded to 56, d_model 32, 2 layers, default ssm_cfg, f32
# untied: f16, d_state 8, d_conv 3, dt_rank 5, biases, 3 layers, norm_epsilon 1e-6
# evil: a pickle that would run code if unpickled without weights_only
"$PY" - "$TMP" <<'EOF' || { echo "FAIL: making fake checkpoints"; exit 1; }
import json, math, os, sys, torch
root = sys.argv[1]
def make(name, d, L, vocab, pad, ssm, dtype, tied, extra_cfg=None):
    out = os.path.join(root, name); os.makedirs(out)
    N = ssm.get("d_state", 16); K = ssm.get("d_conv", 4); di = ssm.get("expand", 2) * d
    R = ssm.get("dt_rank", "auto"); R = math.ceil(d / 16) if R == "auto" else R
    V = vocab + (-vocab) % pad
    g = torch.Generator().manual_seed(int.from_bytes(os.urandom(4), "little"))
    r = lambda *s, std=1.0: (torch.randn(*s, generator=g) * std).to(dtype)
    sd = {"backbone.embedding.weight": r(V, d, std=2 / math.sqrt(d))}
    for i in range(L):
        p = f"backbone.layers.{i}."; m = p + "mixer."
        sd[p + "norm.weight"] = (1 + 0.2 * torch.rand(d, generator=g)).to(dtype)
        sd[m + "in_proj.weight"] = r(2 * di, d, std=d ** -0.5)
        sd[m + "conv1d.weight"] = r(di, 1, K, std=K ** -0.5)
        if ssm.get("conv_bias", True): sd[m + "conv1d.bias"] = r(di, std=0.2)
        sd[m + "x_proj.weight"] = r(R + 2 * N, di, std=di ** -0.5)
        sd[m + "dt_proj.weight"] = r(di, R, std=R ** -0.5)
        dt = torch.exp(torch.rand(di, generator=g) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
        sd[m + "dt_proj.bias"] = (dt + torch.log(-torch.expm1(-dt))).to(dtype)
        sd[m + "A_log"] = torch.log(1 + 15 * torch.rand(di, N, generator=g)).to(dtype)
        sd[m + "D"] = (0.5 + torch.rand(di, generator=g)).to(dtype)
        sd[m + "out_proj.weight"] = r(d, di, std=di ** -0.5)
        if ssm.get("bias", False):
            sd[m + "in_proj.bias"] = r(2 * di, std=0.2); sd[m + "out_proj.bias"] = r(d, std=0.2)
    sd["backbone.norm_f.weight"] = (1 + 0.2 * torch.rand(d, generator=g)).to(dtype)
    # tied: the very same tensor (shared storage), as mamba_ssm saves it
    sd["lm_head.weight"] = sd["backbone.embedding.weight"] if tied else r(V, d, std=2 / math.sqrt(d))
    cfg = {"d_model": d, "n_layer": L, "vocab_size": vocab, "ssm_cfg": ssm, "rms_norm": True,
           "residual_in_fp32": True, "fused_add_norm": True, "pad_vocab_size_multiple": pad,
           "tie_embeddings": tied}
    cfg.update(extra_cfg or {})
    with open(os.path.join(out, "config.json"), "w") as f: json.dump(cfg, f)
    torch.save(sd, os.path.join(out, "pytorch_model.bin"))
make("tied", 32, 2, 50, 8, {}, torch.float32, True)
make("untied", 48, 3, 61, 16, {"d_state": 8, "d_conv": 3, "dt_rank": 5, "bias": True}, torch.float16, False,
     {"norm_epsilon": 1e-6})
class Evil:
    def __reduce__(self):
        return (os.system, ("touch " + os.path.join(root, "PWNED"),))
os.makedirs(os.path.join(root, "evil"))
torch.save({"backbone.embedding.weight": Evil()}, os.path.join(root, "evil", "pytorch_model.bin"))
EOF

# --- bad inputs -------------------------------------------------------------
mkdir -p "$TMP/m2" "$TMP/nocfg" "$TMP/shape" "$TMP/json" "$TMP/garbage"
cp "$TMP/tied/config.json" "$TMP/evil/"
for d in m2 nocfg shape json; do cp "$TMP/tied/pytorch_model.bin" "$TMP/$d/"; done
"$PY" -c "import json;c=json.load(open('$TMP/tied/config.json'));c['ssm_cfg']={'layer':'Mamba2'};json.dump(c,open('$TMP/m2/config.json','w'))"
echo '{"n_layer": 2}' > "$TMP/nocfg/config.json"
"$PY" -c "import json;c=json.load(open('$TMP/tied/config.json'));c['d_model']=40;json.dump(c,open('$TMP/shape/config.json','w'))"
echo 'not json' > "$TMP/json/config.json"
cp "$TMP/tied/config.json" "$TMP/garbage/config.json"
printf 'garbage' > "$TMP/garbage/pytorch_model.bin"

# --- convert: good ones must work, bad ones fail cleanly --------------------
convert_cases "ok|tied|$TMP/tied|$TMP/tied_out" "ok|untied|$TMP/untied|$TMP/untied_out" \
    "ok|untied --dtype f32|$TMP/untied/pytorch_model.bin|$TMP/untied_f32|--dtype|f32" \
    "bad|code-carrying pickle|$TMP/evil|$TMP/evil_out" \
    "bad|Mamba2 config|$TMP/m2|$TMP/m2_out" "bad|config without d_model|$TMP/nocfg|$TMP/nocfg_out" \
    "bad|wrong d_model|$TMP/shape|$TMP/shape_out" "bad|bad JSON|$TMP/json|$TMP/json_out" \
    "bad|missing input|$TMP/does_not_exist|$TMP/x" \
    "bad|truncated pytorch_model.bin|$TMP/garbage|$TMP/garbage_out" || fail=1
[ -e "$TMP/PWNED" ] && die "the pickle's code ran"

# --- compare the converted tensors and config with the originals -----------
"$PY" - "$TMP" "$SRC" "$BIN" <<'EOF' || fail=1
import json, os, sys, torch, numpy as np
from safetensors.torch import load_file
root, src, binary = sys.argv[1], sys.argv[2], sys.argv[3]
import subprocess
has_logits = "  logits " in subprocess.run([binary, "--help"], capture_output=True, text=True).stdout
bad = 0
def check(c, msg):
    global bad
    if not c:
        print("FAIL:", msg, file=sys.stderr); bad = 1
for name, outdir, want_dtype in (("tied", "tied_out", torch.float32), ("untied", "untied_out", torch.float16),
                                 ("untied", "untied_f32", torch.float32)):
    orig = torch.load(os.path.join(root, name, "pytorch_model.bin"), weights_only=True)
    ocfg = json.load(open(os.path.join(root, name, "config.json")))
    conv = load_file(os.path.join(root, outdir, "model.safetensors"))
    cfg = json.load(open(os.path.join(root, outdir, "config.json")))
    check(open(os.path.join(root, outdir, "original_config.json"), "rb").read() ==
          open(os.path.join(root, name, "config.json"), "rb").read(), f"{outdir}: original config not kept")
    tied = name == "tied"
    want = {("backbone.embeddings.weight" if k == "backbone.embedding.weight" else k): v for k, v in orig.items()
            if not (tied and k == "lm_head.weight")}
    check(set(conv) == set(want), f"{outdir}: names differ: {sorted(set(conv) ^ set(want))[:6]}")
    for k, v in want.items():
        if k in conv:
            check(conv[k].dtype == want_dtype, f"{outdir}: {k} dtype {conv[k].dtype}")
            check(tuple(conv[k].shape) == tuple(v.shape), f"{outdir}: {k} shape {tuple(conv[k].shape)}")
            check(torch.equal(conv[k], v.to(want_dtype)), f"{outdir}: {k} values differ")
    d, L = ocfg["d_model"], ocfg["n_layer"]
    V = orig["backbone.embedding.weight"].shape[0]
    ssm = ocfg["ssm_cfg"]
    exp = {"model_type": "mamba", "hidden_size": d, "num_hidden_layers": L, "vocab_size": V,
           "intermediate_size": 2 * d, "state_size": ssm.get("d_state", 16), "conv_kernel": ssm.get("d_conv", 4),
           "time_step_rank": ssm.get("dt_rank", -(-d // 16)), "use_bias": ssm.get("bias", False),
           "use_conv_bias": True, "tie_word_embeddings": tied, "residual_in_fp32": True,
           "layer_norm_epsilon": ocfg.get("norm_epsilon", 1e-5)}
    for k, v in exp.items():
        check(cfg.get(k) == v, f"{outdir}: config {k} = {cfg.get(k)!r}, expected {v!r}")
    check(V % ocfg["pad_vocab_size_multiple"] == 0 and V >= ocfg["vocab_size"], f"{outdir}: vocab {V} not padded")

    # transformers runs the converted directory like an independent float64
    # forward over the original tensors (checks the config mapping too)
    try:
        import transformers
        sys.path.insert(0, os.path.join(src, "tests"))
        from make_model_goldens import numpy_forward
    except Exception:
        continue
    from transformers import MambaForCausalLM
    m = MambaForCausalLM.from_pretrained(os.path.join(root, outdir)).to(torch.float64).eval()
    ids = list(np.random.default_rng().integers(0, V, 12))
    with torch.no_grad():
        got = m(torch.tensor([ids]), use_cache=False).logits[0].double().numpy()
    sd = {k: v.double().numpy() for k, v in want.items()}
    ref = numpy_forward(sd, cfg, "mamba", ids)
    rel = np.linalg.norm(got - ref) / np.linalg.norm(ref)
    check(rel < 1e-5, f"{outdir}: transformers on the converted model vs float64 forward: rel {rel:.2e}")
    print(f"  {outdir}: transformers logits vs float64 reference rel {rel:.1e}")
    if has_logits:  # and mamba-s6 on the converted directory
        lf = os.path.join(root, outdir + ".logits.bin")
        r = subprocess.run([binary, "logits", "-m", os.path.join(root, outdir), "--ids", " ".join(map(str, ids)),
                            "-o", lf], capture_output=True, text=True)
        check(r.returncode == 0, f"{outdir}: mamba-s6 logits failed: {r.stderr}")
        if r.returncode == 0:
            c = np.fromfile(lf, dtype="<f4").astype(np.float64)
            check(c.size == ref.size, f"{outdir}: mamba-s6 logits wrote {c.size} values, expected {ref.size}")
            if c.size == ref.size:
                relc = np.linalg.norm(c.reshape(ref.shape) - ref) / np.linalg.norm(ref)
                check(relc < 1e-5, f"{outdir}: mamba-s6 on the converted model vs float64 forward: rel {relc:.2e}")
                print(f"  {outdir}: mamba-s6 logits vs float64 reference rel {relc:.1e}")
sys.exit(bad)
EOF

# --- mamba-s6 loads the result (when `info` is in this build) ---------------
if "$BIN" --help 2>&1 | grep -q '^  info '; then
    for o in tied_out untied_out; do
        out=$("$BIN" info -m "$TMP/$o" 2>&1) || die "mamba-s6 info on $o failed: $out"
    done
fi

[ $fail -eq 0 ] && echo "cli_convert: all checks passed"
exit $fail
