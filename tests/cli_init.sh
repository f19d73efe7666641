#!/usr/bin/env bash
# mamba-s6 init: writes a small model with the 130m shape (2 layers) and
# checks the safetensors layout (header length + data size computed from the
# shapes here), the tensor names, config.json, determinism per seed, bad
# arguments, and (when the command exists) `mamba-s6 info` on the result.
# usage: bash cli_init.sh <mamba-s6 binary> <source dir>
set -u
BIN=$1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail=0
die() { echo "FAIL: $*" >&2; fail=1; }

# --- a 2-layer model with the 130m shapes, f16 and f32 ---
for dt in f16 f32; do
    out=$("$BIN" init --shape 130m --layers 2 --dtype $dt --seed 7 -o "$TMP/m_$dt" 2>&1) || die "init $dt failed: $out"
    f="$TMP/m_$dt/model.safetensors"
    [ -s "$f" ] || { die "$f missing"; continue; }
    d=768; di=1536; N=16; K=4; R=48; V=50280; L=2
    per_layer=$(( di*N + di + di + di*K + di + di*R + 2*di*d + d*di + (R+2*N)*di + d ))
    params=$(( V*d + L*per_layer + d ))
    es=2; [ $dt = f32 ] && es=4
    hlen=$(od -An -t u8 -N8 "$f" | tr -d ' ')
    size=$(stat -c %s "$f")
    [ $(( hlen % 8 )) -eq 0 ] || die "$dt: header length $hlen not a multiple of 8"
    [ "$size" -eq $(( 8 + hlen + params*es )) ] ||
        die "$dt: file size $size != 8 + $hlen + $params*$es"
    hdr=$(head -c $(( 8 + hlen )) "$f" | tail -c "$hlen")
    for name in backbone.embeddings.weight backbone.norm_f.weight \
                backbone.layers.1.mixer.A_log backbone.layers.1.mixer.conv1d.bias \
                backbone.layers.0.mixer.dt_proj.bias backbone.layers.0.mixer.x_proj.weight; do
        grep -q "\"$name\"" <<<"$hdr" || die "$dt: tensor $name missing from the header"
    done
    grep -q '"layers.2.' <<<"$hdr" && die "$dt: --layers 2 wrote a third layer"
    grep -q 'lm_head' <<<"$hdr" && die "$dt: tied model has lm_head.weight"
    grep -q 'in_proj.bias' <<<"$hdr" && die "$dt: 130m shape has no in_proj.bias"
    want=$(echo $dt | tr a-z A-Z)
    grep -q "\"dtype\":\"$want\"" <<<"$hdr" || die "$dt: header dtype is not $want"
    grep -q "\"backbone.layers.0.mixer.conv1d.weight\":{\"dtype\":\"$want\",\"shape\":\[1536,1,4\]" <<<"$hdr" ||
        die "$dt: conv1d.weight shape is not [1536,1,4]"
    grep -q "\"backbone.layers.0.mixer.x_proj.weight\":{\"dtype\":\"$want\",\"shape\":\[80,1536\]" <<<"$hdr" ||
        die "$dt: x_proj.weight shape is not [80,1536]"
    cfg="$TMP/m_$dt/config.json"
    for kv in '"model_type":"mamba"' '"hidden_size":768' '"num_hidden_layers":2' '"vocab_size":50280' \
              '"state_size":16' '"time_step_rank":48' '"intermediate_size":1536' '"tie_word_embeddings":true'; do
        tr -d ' \t' <"$cfg" | grep -q "$kv" || die "$dt: config.json lacks $kv"
    done
done

# --- determinism: same seed -> same bytes; another seed -> other bytes ---
"$BIN" init --shape 130m --layers 1 --seed 11 -o "$TMP/a" >/dev/null || die "init a"
"$BIN" init --shape 130m --layers 1 --seed 11 -o "$TMP/b" >/dev/null || die "init b"
"$BIN" init --shape 130m --layers 1 --seed 12 -o "$TMP/c" >/dev/null || die "init c"
cmp -s "$TMP/a/model.safetensors" "$TMP/b/model.safetensors" || die "same seed gave different files"
cmp -s "$TMP/a/model.safetensors" "$TMP/c/model.safetensors" && die "different seeds gave the same file"

# --- bad arguments: non-zero exit and a message, never a crash ---
bad() {
    local out rc
    out=$("$BIN" init "$@" 2>&1); rc=$?
    if [ $rc -eq 0 ] || [ $rc -gt 128 ] || [ -z "$out" ]; then die "init $* -> rc $rc, '$out'"; fi
}
bad --shape 9b -o "$TMP/x"
bad --shape 130m
bad -o "$TMP/x"
bad --shape 130m -o "$TMP/x" --dtype f64
bad --shape 130m -o "$TMP/x" --layers 0
bad --shape 130m -o "$TMP/x" --seed -4
bad --shape 130m -o "$TMP/no/such/dir"
bad --shape 130m -o "$TMP/m_f16/config.json"
bad --shape 130m -o "$TMP/x" --bogus 1
bad --shape

# --- the model loads and runs (when this build has `info` / `logits`) ---
if "$BIN" --help 2>&1 | grep -q '^  info '; then
    out=$("$BIN" info -m "$TMP/m_f16" 2>&1) || die "info failed on the init model: $out"
    grep -q 768 <<<"$out" || die "info output does not mention d_model 768: $out"
else
    echo "note: no 'info' command in this build; load check skipped"
fi
if "$BIN" --help 2>&1 | grep -q '^  logits '; then
    for dt in f16 f32; do
        lf="$TMP/lg_$dt.bin"
        out=$("$BIN" logits -m "$TMP/m_$dt" --ids "0 17 50279 1234" -o "$lf" 2>&1) ||
            die "logits failed on the $dt init model: $out"
        [ "$(stat -c %s "$lf" 2>/dev/null)" = $(( 4 * 50280 * 4 )) ] || die "$dt: logits file size is not 4 x 50280 floats"
        # O(1) logits: finite, not all zero, none above 100 in magnitude
        od -An -v -t f4 "$lf" | tr -s ' ' '\n' | grep -v '^$' | awk '
            { n++; v = $1 + 0; if ($1 ~ /nan|inf/) bad++; if (v > 100 || v < -100) big++; s += v * v }
            END { if (n != 4 * 50280 || bad || big || s / n < 0.1 || s / n > 100) exit 1 }' ||
            die "$dt: logits not finite O(1) values"
    done
fi

[ $fail -eq 0 ] && echo "cli_init: all checks passed"
exit $fail
