# Usage (hf-sandbox): run.sh samples/scripts/llama2c/hf_generate.py MODEL_DIR PROMPT STEPS
"""Greedy generation with transformers on a converted llama2.c folder: BOS + prompt, total 60 positions as run.c's steps."""
import json, sys, torch, transformers
from transformers import AutoModelForCausalLM, AutoTokenizer
folder, prompt, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
tok = AutoTokenizer.from_pretrained(folder)
model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
ids = tok(prompt)["input_ids"]
with torch.no_grad():
    out = model.generate(torch.tensor([ids]), max_new_tokens=steps - len(ids), do_sample=False, pad_token_id=tok.eos_token_id)
new = out[0, len(ids):].tolist()
print(json.dumps({"transformers": transformers.__version__, "class": type(model).__name__, "layers": model.config.num_hidden_layers,
                  "prompt_ids": ids, "generated": new, "text": prompt + tok.decode(new, skip_special_tokens=True)}, ensure_ascii=False))
