# Usage (hf-sandbox): run.sh samples/scripts/llama2c/hf_tokenize.py MODEL_DIR TOKENIZER.bin TEXTS.json
"""Compares tokenization of a converted llama2.c folder: HF tokenizers (tokenizer.json), AutoTokenizer, and a Python
port of llama2.c run.c's encode() on the original tok512.bin. Prints JSON."""
import json, struct, sys
import transformers, tokenizers
from tokenizers import Tokenizer
from transformers import AutoTokenizer
folder, tokbin = sys.argv[1], sys.argv[2]
texts = json.load(open(sys.argv[3], encoding="utf-8"))

def load_bin(path, n):
    data = open(path, "rb").read()
    at = 4; vocab = []; scores = []
    for i in range(n):
        s, l = struct.unpack_from("<fi", data, at); at += 8
        vocab.append(data[at:at + l]); scores.append(s); at += l
    assert at == len(data)
    return vocab, scores

def encode_run_c(text, vocab, scores):
    lookup = {}
    for i, v in enumerate(vocab): lookup.setdefault(v, i)
    toks = []
    if text != "": toks.append(lookup[b" "])
    for ch in text:
        b = ch.encode("utf-8")
        if b in lookup: toks.append(lookup[b])
        else: toks.extend(x + 3 for x in b)
    while True:
        best, bid, bidx = -1e10, -1, -1
        for i in range(len(toks) - 1):
            j = lookup.get(vocab[toks[i]] + vocab[toks[i + 1]])
            if j is not None and scores[j] > best: best, bid, bidx = scores[j], j, i
        if bidx < 0: break
        toks[bidx:bidx + 2] = [bid]
    return toks

vocab, scores = load_bin(tokbin, 512)
fast = Tokenizer.from_file(folder + "/tokenizer.json")
auto = AutoTokenizer.from_pretrained(folder)
out = []
for t in texts:
    hf = fast.encode(t, add_special_tokens=False).ids
    au = auto(t, add_special_tokens=False)["input_ids"]
    rc = encode_run_c(t, vocab, scores)
    out.append({"text": t, "hf": hf, "auto_with_bos": auto(t)["input_ids"], "run_c": rc, "hf_eq_auto": hf == au, "hf_eq_run_c": hf == rc,
                "decoded": fast.decode(hf)})
print(json.dumps({"transformers": transformers.__version__, "tokenizers": tokenizers.__version__, "auto_class": type(auto).__name__, "results": out}, ensure_ascii=False, indent=1))
