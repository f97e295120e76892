"""Loads a model folder written by Pip with transformers (no custom code) and compares with Pip's own results,
which HfCrossCheck wrote beside the folder (NAME.pip.json: ids, nll; NAME.pip_logits.bin: float32 logits).
Prints one JSON line. Usage (through run.sh): compare.py MODEL_DIR TEXT_FILE [--max-tokens N]"""
import argparse, json, os, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
p = argparse.ArgumentParser()
p.add_argument("model"); p.add_argument("text"); p.add_argument("--max-tokens", type=int, default=512)
a = p.parse_args()
model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32).eval()
tok = AutoTokenizer.from_pretrained(a.model)
ids = tok(open(a.text, encoding="utf-8").read())["input_ids"][: a.max_tokens]   # default special tokens, as Pip's Tokenize
base = os.path.normpath(a.model)
pip = json.load(open(base + ".pip.json"))
x = torch.tensor([ids])
with torch.no_grad():
    out = model(x, labels=x)
pip_logits = torch.frombuffer(bytearray(open(base + ".pip_logits.bin", "rb").read()), dtype=torch.float32)
same_shape = pip_logits.numel() == out.logits.numel()
diff = (pip_logits.view_as(out.logits) - out.logits).abs().max().item() if same_shape else float("inf")
print(json.dumps({"ids_equal": ids == pip["ids"], "hf_nll": out.loss.item(), "pip_nll": pip["nll"],
                  "max_abs_logit_diff": diff, "architecture": type(model).__name__}))
