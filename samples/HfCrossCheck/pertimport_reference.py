"""PertImport computed the obvious way in PyTorch on a transformers model: for each pair (x, x'), two separate
backward passes of the Hugging Face loss, each decoder layer's parameter gradients flattened, the difference's
L1/L2/Linf norm divided by the layer's parameter count, mean over pairs. Prints one JSON line.
Usage (through run.sh): pertimport_reference.py MODEL_DIR PAIRS_JSON   (PAIRS_JSON: [[x, x_perturbed], ...])"""
import argparse, json, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
p = argparse.ArgumentParser()
p.add_argument("model"); p.add_argument("pairs")
a = p.parse_args()
model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32).eval()
tok = AutoTokenizer.from_pretrained(a.model)
layers = model.model.layers

def layer_gradients(text):
    ids = torch.tensor([tok(text)["input_ids"]])
    model.zero_grad(set_to_none=True)
    model(ids, labels=ids).loss.backward()
    g = [torch.cat([q.grad.flatten().double() for q in layer.parameters()]) for layer in layers]
    model.zero_grad(set_to_none=True)
    return g

pairs = json.load(open(a.pairs, encoding="utf-8"))
scores = {"L1": [0.0] * len(layers), "L2": [0.0] * len(layers), "Linf": [0.0] * len(layers)}
for x, y in pairs:
    gx, gy = layer_gradients(x), layer_gradients(y)
    for l in range(len(layers)):
        d = gx[l] - gy[l]
        n = d.numel()
        scores["L1"][l] += d.abs().sum().item() / n / len(pairs)
        scores["L2"][l] += d.norm().item() / n / len(pairs)
        scores["Linf"][l] += d.abs().max().item() / n / len(pairs)
print(json.dumps(scores))
