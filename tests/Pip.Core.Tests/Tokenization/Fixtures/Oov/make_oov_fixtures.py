"""Writes the tokenizer.json fixtures of HfTokenizerOovTests and the ids Hugging Face `tokenizers` gives for texts with
characters outside their vocabularies (emoji, CJK, newline, tab, accented letters).

Run with the Python of the hf-sandbox (tokenizers installed), from the repository root:
    ../shared/tools/hf-sandbox/run.sh tests/Pip.Core.Tests/Tokenization/Fixtures/Oov/make_oov_fixtures.py
It writes next to itself, whatever the working folder. It rewrites <case>/tokenizer.json and expected_ids.json; the tests only read them.
"""
import json
import os

import tokenizers
from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))

TEXTS = [
    "hello world",
    "hello world\n",
    "tab\there",
    "héllo wörld",
    "emoji 😀 ok",
    "CJK 漢字 text",
    "a☃b",
    "😀😀 漢\n\n",
    "\ttrailing\t",
    "café\nthe end\n",
    "\nhello\n\nworld\n",
    "the brown fox.\nthe lazy dog!\n\tend\n",
]

LETTERS = list("abcdehiklnortwxyCJKT")


def spm_vocab(byte_tokens):
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    if byte_tokens:
        for b in range(256):
            vocab[f"<0x{b:02X}>"] = len(vocab)
    for c in ["▁"] + LETTERS:
        vocab[c] = len(vocab)
    merges = [("▁", "t"), ("h", "e"), ("l", "l"), ("▁t", "h"), ("he", "ll"), ("hell", "o"), ("▁", "w"), ("o", "r"), ("▁w", "or"), ("a", "b"), ("▁th", "e")]
    for left, right in merges:
        vocab.setdefault(left + right, len(vocab))
    return vocab, [f"{l} {r}" for l, r in merges]


def spm_prepend(unk, byte_fallback, fuse_unk):
    """Llama 2 style: Prepend("▁") + Replace(" ", "▁") normalizer, no pre-tokenizer."""
    vocab, merges = spm_vocab(byte_fallback)
    decoders = [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "}]
    if byte_fallback:
        decoders.append({"type": "ByteFallback"})
    decoders += [{"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": 0, "content": "<unk>", "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True},
            {"id": 1, "content": "<s>", "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True},
            {"id": 2, "content": "</s>", "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True},
        ],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
        ]},
        "pre_tokenizer": None,
        "post_processor": None,
        "decoder": {"type": "Sequence", "decoders": decoders},
        "model": {
            "type": "BPE", "dropout": None, "unk_token": "<unk>" if unk else None,
            "continuing_subword_prefix": None, "end_of_word_suffix": None,
            "fuse_unk": fuse_unk, "byte_fallback": byte_fallback, "ignore_merges": False,
            "vocab": vocab, "merges": merges,
        },
    }


def spm_metaspace(unk, byte_fallback):
    """Metaspace pre-tokenizer (prepend_scheme first, split), as newer SentencePiece conversions write it."""
    t = spm_prepend(unk, byte_fallback, fuse_unk=True)
    t["normalizer"] = None
    t["pre_tokenizer"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": True}
    t["decoder"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": True}
    return t


def gpt2_byte_chars():
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    chars, n = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + n)
            n += 1
    return chars


def byte_level(unk):
    """Byte-level BPE whose vocabulary lacks most bytes: only the letters, space (Ġ) and '<unk>' when asked."""
    chars = gpt2_byte_chars()
    vocab = {"<unk>": 0} if unk else {}
    for c in ["Ġ"] + LETTERS:
        vocab[c] = len(vocab)
    merges = [("h", "e"), ("l", "l"), ("he", "ll"), ("hell", "o"), ("Ġ", "w"), ("o", "r"), ("Ġw", "or"), ("a", "b"), ("Ġ", "t")]
    for left, right in merges:
        vocab.setdefault(left + right, len(vocab))
    assert chars[32] == "Ġ"
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE", "dropout": None, "unk_token": "<unk>" if unk else None,
            "continuing_subword_prefix": None, "end_of_word_suffix": None,
            "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
            "vocab": vocab, "merges": [f"{l} {r}" for l, r in merges],
        },
    }


def char_level():
    """A llama2.c-style character vocabulary (printable ASCII and ▁, no merges), no unk, no byte_fallback."""
    t = spm_prepend(unk=False, byte_fallback=False, fuse_unk=False)
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "▁": 3}
    for c in range(33, 127):
        vocab.setdefault(chr(c), len(vocab))
    t["model"]["vocab"] = vocab
    t["model"]["merges"] = []
    return t


def with_model(spec, **model):
    spec["model"].update(model)
    return spec


CASES = {
    "spm-unk": spm_prepend(unk=True, byte_fallback=False, fuse_unk=True),
    "spm-unk-nofuse": spm_prepend(unk=True, byte_fallback=False, fuse_unk=False),
    "spm-byte-fallback": spm_prepend(unk=True, byte_fallback=True, fuse_unk=True),
    "spm-neither": spm_prepend(unk=False, byte_fallback=False, fuse_unk=False),
    "metaspace-unk": spm_metaspace(unk=True, byte_fallback=False),
    "metaspace-neither": spm_metaspace(unk=False, byte_fallback=False),
    "bytelevel-unk": byte_level(unk=True),
    "bytelevel-neither": byte_level(unk=False),
    "bytelevel-neither-ignore-merges": with_model(byte_level(unk=False), ignore_merges=True),
    "spm-byte-fallback-no-bytes": with_model(spm_prepend(unk=False, byte_fallback=False, fuse_unk=False), byte_fallback=True),
    "spm-byte-fallback-no-bytes-unk": with_model(spm_prepend(unk=True, byte_fallback=False, fuse_unk=True), byte_fallback=True),
    "spm-neither-fuse": spm_prepend(unk=False, byte_fallback=False, fuse_unk=True),
    "metaspace-always-nosplit-neither": {**spm_metaspace(unk=False, byte_fallback=False),
        "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": False},
        "decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": False}},
    "char-level": char_level(),
}

expected = {"tokenizers_version": tokenizers.__version__, "texts": TEXTS, "cases": {}}
for name, spec in CASES.items():
    folder = os.path.join(HERE, name)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "tokenizer.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(spec, f, ensure_ascii=False, indent=1)
        f.write("\n")
    tok = Tokenizer.from_file(path)
    expected["cases"][name] = [tok.encode(t, add_special_tokens=False).ids for t in TEXTS]

with open(os.path.join(HERE, "expected_ids.json"), "w", encoding="utf-8") as f:
    json.dump(expected, f, ensure_ascii=False, indent=1)
    f.write("\n")
print("tokenizers", tokenizers.__version__, "cases", len(CASES), "texts", len(TEXTS))
