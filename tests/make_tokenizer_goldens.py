#!/usr/bin/env python3
"""Makes the tokenizer goldens in tests/golden/tokenizer/ with Hugging Face `tokenizers`.

It trains two small byte-level BPE tokenizers on the corpus below:

  neox_like.json      the structure of GPT-NeoX-20B's tokenizer.json: NFC normalizer,
                      ByteLevel pre-tokenizer (no prefix space, GPT-2 regex), ByteLevel
                      decoder and post-processor, special tokens <|endoftext|> (id 0) and
                      <|padding|> (id 1), runs of 24 down to 2 spaces as non-special added
                      tokens (normalized = true) after the vocabulary, and merges written
                      as "left right" strings, as in the real file;
  prefix_flags.json   the same with add_prefix_space = true, merges as ["left", "right"]
                      pairs, and added tokens that use single_word, lstrip, rstrip and a
                      normalized token whose content is not NFC;
  unk_ignore.json     neox_like without four byte tokens, with unk_token + fuse_unk and
                      ignore_merges (the BPE options other tokenizer.json files use).

Then it encodes a stress corpus (multilingual text, emoji with ZWJ sequences, combining
accents, code with indentation, runs of spaces and tabs, CRLF, contractions, numbers,
special tokens mid-text, invalid UTF-8, and seeded random mixtures of all of these) and
writes cases.json:

  {"tokenizers_version": "...",
   "tokenizers": {"neox_like": [{"text_hex": ..., "ids": [...], "decoded_hex": ...}, ...], ...},
   "decode": {"neox_like": [{"ids": [...], "decoded_hex": ...}, ...], ...}}

text_hex holds the raw input bytes (possibly invalid UTF-8; `tokenizers` gets
bytes.decode('utf-8', errors='replace') of them), decoded_hex the UTF-8 of
decode(ids, skip_special_tokens=False). The "decode" cases are random id
sequences, whose bytes are often not valid UTF-8 (decoded as from_utf8_lossy does).

  python3 tests/make_tokenizer_goldens.py                 # rewrite the goldens
  python3 tests/make_tokenizer_goldens.py --check-neox BIN [--n N]
      compares `BIN tokenize` with `tokenizers` on the real GPT-NeoX tokenizer.json
      (../shared/data/gpt-neox-20b) for the stress corpus and N random strings;
      nothing is written.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "golden", "tokenizer")
NEOX = os.path.join(HERE, "..", "..", "shared", "data", "gpt-neox-20b", "tokenizer.json")

TRAIN_TEXT = """\
The selective state-space model reads a sequence one token at a time, and it keeps a fixed-size state.
It doesn't attend to every earlier token; instead, it decides what to remember and what to forget.
We'll measure how fast it runs: 1,234 tokens per second on the laptop, 56789 on the server.
"Hello," she said. "I'm not sure I'll make it, but we've tried, and they'd agree."
In 2024 the team released three models (130M, 1.4B and 2.8B parameters) under an open licence.
The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs!
Numbers: 0 1 2 3 4 5 6 7 8 9 10 11 12 100 1000 3.14159 2.71828 -42 +7 1e-5 0x1F 1/2 50%.
def scan(u, delta, A, B, C):
    h = 0
    for t in range(len(u)):
        h = exp(delta[t] * A) * h + delta[t] * B[t] * u[t]
        yield C[t] * h
int main(int argc, char **argv) {
\tif (argc < 2) {
\t\treturn 1;
\t}
\treturn 0;
}
Le modèle lit la séquence et garde un état de taille fixe. Où est la café? Déjà vu, naïve façade.
Der schnelle braune Fuchs springt über den faulen Hund. Äpfel, Öl und Übermut; Straße.
Быстрая коричневая лиса перепрыгивает через ленивую собаку. Привет, мир!
Η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο.
敏捷的棕色狐狸跳过了懒狗。我想在苹果工作。今日は良い天気ですね。こんにちは世界。
빠른 갈색 여우가 게으른 개를 뛰어넘습니다. 안녕하세요.
الثعلب البني السريع يقفز فوق الكلب الكسول. שלום עולם. नमस्ते दुनिया। สวัสดีชาวโลก
Cửa Việt, Hà Nội, Thành phố Hồ Chí Minh. ½ ¾ ² ³ € £ ¥ © ® ™ … — – « » “quotes” ‘single’
Emoji: 😀 😁 🚀 🦙 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️ ✅ 😶‍🌫️ 🇫🇷 🇯🇵
<|endoftext|>Once upon a time, there was a little model that wanted to run on every device.<|endoftext|>
    indented with four spaces
        and eight spaces
            and twelve, then a tab\tand two\t\ttabs.
Windows line\r\nendings\r\nhere. Trailing spaces   \nand blank lines\n\n\nat the end.
https://example.com/path?query=1&other=two#frag user@example.org C:\\Users\\name\\file.txt
"""

STRESS = [
    "",
    " ",
    "  ",
    "   ",
    "\t",
    "\n",
    "\n\n\n",
    "\t\n",
    " \t \n \r\n",
    "Hello world",
    " Hello world",
    "Hello, world! How are you?",
    "ied 4 ½ months",
    "Äpfel",
    "A\u0308pfel und A\u030apfel",  # combining diaeresis / ring: NFC composes
    "e\u0301 e\u0300 o\u0302 n\u0303 c\u0327 \u1e9b\u0323",
    "\u212b \u2126 \ufb01 \u0958",  # Angstrom and Ohm signs (NFC singletons), ligature, a composition exclusion
    "нещо на Български",
    "кафе и чай, Привет мир",
    "敏捷的棕色狐狸跳过了懒狗。",
    "Hello, y'all! How are you 😁 ?我想在apple工作1314151天～",
    "🚀 (normal) 😶‍🌫️ (multiple emojis concatenated) ✅ (only emoji that has its own token)",
    "👨‍👩‍👧‍👦 family, 🏳️‍🌈 flag, 👍🏽 thumbs, 🇫🇷🇯🇵 flags",
    "កាន់តែពិសេសអាចខលចេញ",
    "नमस्ते दुनिया। สวัสดีชาวโลก שלום עולם الثعلب",
    "Cửa Việt",
    "def f(x):\n    return x + 1\n\n\nclass A:\n    def g(self):\n        pass\n",
    "int main() {\n\tif (x) {\n\t\treturn 1;\n\t}\n}\n",
    "    Hello\n    Hello",
    "a" + " " * 30 + "b",
    " " * 25,
    " " * 24 + "x",
    " " * 50 + "\n" + " " * 7 + "y",
    "\t\t\t  \t x",
    "line one\r\nline two\r\n\r\nline three\r",
    "'s 't 're 've 'm 'll 'd",
    "I'm sure you'll see they've done what we'd do; it's John's, isn't it? 'TIS 'Ll 'RE",
    "' era",
    "3 33 333 3333 33333 333333 3333333 33333333 333333333",
    "1,234.56 -7 +8 1e-5 0x1F 3.14159 ½ ² ³ ٣ ४ 五",
    "!!!!!! ??? ... --- *** ### @@@",
    "<|endoftext|>",
    "<|endoftext|><|endoftext|>",
    "text<|endoftext|>more text",
    "before <|endoftext|> after",
    "a<|padding|>b <|endoftext|>\n<|padding|>",
    "<|endoftext |> <|endoftext| <endoftext|>",
    "  <|endoftext|>  ",
    "word  <|endoftext|>   word",
    "\u00a0non-breaking\u00a0space \u2003em space \u3000ideographic \u0085next line \u2028ls",
    "\u200bzero\u200bwidth \ufeffBOM \u00adsoft hyphen",
    "tab\tseparated\tvalues\t1\t2\t3",
    "https://example.com/path?query=1&other=two#frag",
    "ALLCAPS MixedCase camelCase snake_case kebab-case",
    "\x00nul\x01\x02\x7f del",
    "Ω≈ç√∫˜µ≤≥÷ åß∂ƒ©˙∆˚¬…æ",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝐛𝐨𝐥𝐝 𓀀 𠜎 🀄",
    " discards",
    "\n =",
    " (",
    " this is 🦙.cpp",
    "w048 7tuijk dsdfhu",
]

INVALID = [
    b"\xff",
    b"abc\xffdef",
    b"\xc3",
    b"\xc3(",
    b"\xe2\x82",
    b"\xe2\x82 euro",
    b"\xf0\x9f\x98",
    b"\xf0\x9f\x98 x \xf0\x9f\x98\x81",
    b"\xc0\x80 overlong",
    b"\xed\xa0\x80 surrogate",
    b"\xf4\x90\x80\x80 too large",
    b"\x80\x80\x80 continuation",
    b"\xfe\xfe\xff\xff",
    b"caf\xe9 latin-1",
    b"  \xff  \xfe\n",
    b"<|endoftext|>\xff<|endoftext|>",
]

PIECES = [
    "the", " the", "The", " model", "state", " space", "'s", "'ll", "don't", "123", "4567", " 8",
    ",", ".", "!", "?", ";", ":", "(", ")", "[", "]", "{", "}", "-", "_", "\"", "'", "/", "\\",
    " ", "  ", "   ", "    ", "\t", "\n", "\r\n", "\n\n", " \n", "\t\t",
    "é", "e\u0301", "ñ", "ü", "u\u0308", "Å", "A\u030a", "ß", "ø", "€", "½", "²",
    "при", "вет", "мир", "γειά", "你好", "世界", "こんにちは", "안녕", "مرحبا", "שלום", "नमस्ते",
    "😀", "🚀", "👍🏽", "👨‍👩‍👧", "🏳️‍🌈", "❤️", "\u200d", "\ufe0f", "🇫🇷",
    "<|endoftext|>", "<|padding|>", "\u00a0", "\u3000", "\u0085", "\x00",
]


def random_text(rng, n_pieces):
    return "".join(rng.choice(PIECES) for _ in range(n_pieces))


def train_corpus():
    rng = random.Random(1234)
    lines = TRAIN_TEXT.split("\n")
    corpus = []
    for _ in range(60):
        rng.shuffle(lines)
        corpus.append("\n".join(lines))
    for _ in range(400):
        corpus.append(random_text(rng, rng.randint(5, 40)))
    return corpus


def build(add_prefix_space, flags_variant):
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=True)
    trainer = trainers.BpeTrainer(
        vocab_size=1200,
        min_frequency=2,
        special_tokens=["<|endoftext|>", "<|padding|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(train_corpus(), trainer=trainer)
    # GPT-NeoX: runs of 24 down to 2 spaces, non-special, normalized.
    tok.add_tokens([AddedToken(" " * n, normalized=True, special=False) for n in range(24, 1, -1)])
    if flags_variant:
        tok.add_tokens([
            AddedToken("[sw]", single_word=True, normalized=False),
            AddedToken("<l>", lstrip=True, normalized=False),
            AddedToken("<r>", rstrip=True, normalized=False),
            AddedToken("<lr>", lstrip=True, rstrip=True, normalized=True),
            AddedToken("cafe\u0301", normalized=True),
            AddedToken("word", single_word=True, normalized=True),
        ])
        tok.add_special_tokens([AddedToken("<|sep|>", special=True, normalized=False)])
    return tok


def to_neox_json(tok, merges_as_strings):
    j = json.loads(tok.to_str())
    merges = j["model"]["merges"]
    if merges_as_strings:
        j["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in merges]
    else:
        j["model"]["merges"] = [m.split(" ") if isinstance(m, str) else m for m in merges]
    return json.dumps(j, ensure_ascii=False, indent=1)


def stress_inputs(flags_variant):
    rng = random.Random(99 + flags_variant)
    texts = [s.encode("utf-8") for s in STRESS] + list(INVALID)
    if flags_variant:
        texts += [s.encode() for s in [
            "[sw] a[sw] [sw]b x [sw]", "a <l> b", "a  <l>b", " <l>", "a<r>  b", "a <r>\n\nb", "x  <lr>  y",
            "café cafe\u0301 caf\u00e9s", "word words sword a word. word_x", "a<|sep|>b <|sep|> ",
        ]]
    for _ in range(60):
        texts.append(random_text(rng, rng.randint(1, 30)).encode("utf-8"))
    for _ in range(10):
        b = bytearray(random_text(rng, rng.randint(1, 20)).encode("utf-8"))
        for _ in range(rng.randint(1, 3)):
            b.insert(rng.randint(0, len(b)), rng.randint(0x80, 0xff))
        texts.append(bytes(b))
    return texts


def cases_for(tok, texts):
    out = []
    for raw in texts:
        text = raw.decode("utf-8", errors="replace")
        ids = tok.encode(text).ids
        dec = tok.decode(ids, skip_special_tokens=False)
        out.append({"text_hex": raw.hex(), "ids": ids, "decoded_hex": dec.encode("utf-8").hex()})
    return out


def decode_cases(tok, seed):
    """Random id sequences (many split multi-byte characters) and the text `tokenizers` decodes."""
    rng = random.Random(seed)
    n = tok.get_vocab_size(with_added_tokens=True)
    out = []
    for _ in range(40):
        ids = [rng.randrange(n) for _ in range(rng.randint(1, 12))]
        out.append({"ids": ids, "decoded_hex": tok.decode(ids, skip_special_tokens=False).encode("utf-8").hex()})
    return out


def make_goldens():
    import tokenizers

    os.makedirs(OUT, exist_ok=True)
    result = {"tokenizers_version": tokenizers.__version__, "tokenizers": {}, "decode": {}}
    for name, prefix, flags, as_strings in [("neox_like", False, 0, True), ("prefix_flags", True, 1, False)]:
        path = os.path.join(OUT, name + ".json")
        with open(path, "w", encoding="utf-8") as f:
            f.write(to_neox_json(build(prefix, flags), as_strings))
        tok = Tokenizer.from_file(path)  # the cases come from the file as written
        result["tokenizers"][name] = cases_for(tok, stress_inputs(flags))
        result["decode"][name] = decode_cases(tok, 5 + flags)
    # unk_ignore: neox_like with four byte tokens renamed away (their bytes
    # become unk, fused), the merges using them dropped, and ignore_merges.
    j = json.load(open(os.path.join(OUT, "neox_like.json"), encoding="utf-8"))
    vocab = j["model"]["vocab"]
    for i, t in enumerate(["Ã", "Â", "ð", "Ł"]):
        vocab["<unk>" if i == 0 else "<unused%d>" % i] = vocab.pop(t)
    j["model"]["merges"] = [m for m in j["model"]["merges"]
                            if not any(d in m.split(" ") for d in ["Ã", "Â", "ð", "Ł"])]
    j["model"].update(unk_token="<unk>", fuse_unk=True, ignore_merges=True)
    path = os.path.join(OUT, "unk_ignore.json")
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(j, ensure_ascii=False, indent=1))
    tok = Tokenizer.from_file(path)
    result["tokenizers"]["unk_ignore"] = cases_for(tok, stress_inputs(0)[:120])
    result["decode"]["unk_ignore"] = decode_cases(tok, 7)
    with open(os.path.join(OUT, "cases.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=0)
    for fn in sorted(os.listdir(OUT)):
        print(fn, os.path.getsize(os.path.join(OUT, fn)), "bytes")


def check_neox(binary, n_random):
    if not os.path.exists(NEOX):
        print("no", NEOX, "- nothing to check")
        return 0
    tok = Tokenizer.from_file(NEOX)
    rng = random.Random(7)
    texts = stress_inputs(0) + stress_inputs(1)
    for _ in range(n_random):
        texts.append(random_text(rng, rng.randint(1, 60)).encode("utf-8"))
    bad = 0
    with tempfile.NamedTemporaryFile(delete=False) as f:
        tmp = f.name
    for raw in texts:
        with open(tmp, "wb") as f:
            f.write(raw)
        r = subprocess.run([binary, "tokenize", "--tokenizer", NEOX, "--file", tmp], capture_output=True)
        got = [int(x) for x in r.stdout.split()]
        want = tok.encode(raw.decode("utf-8", errors="replace")).ids
        if r.returncode != 0 or got != want:
            bad += 1
            print("MISMATCH", repr(raw[:80]), got[:16], want[:16], r.stderr.decode()[:200])
    os.unlink(tmp)
    print(f"{len(texts)} strings, {bad} mismatches")
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check-neox", metavar="BIN", help="compare BIN tokenize with tokenizers on the real file")
    ap.add_argument("--n", type=int, default=300, help="random strings for --check-neox")
    a = ap.parse_args()
    if a.check_neox:
        sys.exit(check_neox(a.check_neox, a.n))
    make_goldens()


if __name__ == "__main__":
    main()
