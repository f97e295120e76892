"""Makes tiny random models with transformers and a byte-level BPE tokenizer trained with `tokenizers`, saves them
with save_pretrained, and writes what transformers computes for the text (hf.json: ids, nll; hf_logits.bin: float32
logits), for Pip to load and compare. Prints one JSON line listing the models.
Usage (through run.sh): make_hf_models.py OUT_DIR TEXT_FILE [--max-tokens N]"""
import argparse, json, os, torch, transformers
from tokenizers import Tokenizer, models, pre_tokenizers, decoders, processors, trainers
from transformers import (AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM, PreTrainedTokenizerFast)
p = argparse.ArgumentParser()
p.add_argument("out"); p.add_argument("text"); p.add_argument("--max-tokens", type=int, default=512)
a = p.parse_args()
text = open(a.text, encoding="utf-8").read()

# GPT-2 style byte-level BPE, BOS added by the post-processor.
raw = Tokenizer(models.BPE())
raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
raw.decoder = decoders.ByteLevel()
raw.train_from_iterator([text], trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>", "</s>"],
                                                    initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
bos = raw.token_to_id("<s>")
raw.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)])
tok = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<s>", eos_token="</s>")
vocab = raw.get_vocab_size()

def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, prm in model.named_parameters():
            if n.endswith("norm.weight") or n.endswith(".bias"):
                prm.add_(torch.randn(prm.shape, generator=g) * 0.2)
    return model

common = dict(vocab_size=vocab, hidden_size=64, intermediate_size=112, num_hidden_layers=3, num_attention_heads=8,
              num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-6, initializer_range=0.15,
              bos_token_id=bos, eos_token_id=raw.token_to_id("</s>"))
specs = [
    ("hf-llama-gqa-untied", lambda: LlamaForCausalLM(LlamaConfig(tie_word_embeddings=False, **common)), torch.float32),
    ("hf-qwen2-bias-tied", lambda: Qwen2ForCausalLM(Qwen2Config(tie_word_embeddings=True, **common)), torch.float32),
    ("hf-llama-bf16", lambda: LlamaForCausalLM(LlamaConfig(tie_word_embeddings=False, **common)), torch.bfloat16),
]
made = []
for i, (name, build, dtype) in enumerate(specs):
    torch.manual_seed(100 + i)
    model = randomize(build(), 200 + i).to(dtype).eval()
    folder = os.path.join(a.out, name)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    # What transformers computes from the saved folder, loaded afresh in float32 (not model.float(): .to(bfloat16)
    # would also have rounded the rotary inv_freq buffer, which a fresh load recomputes in float32).
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    ids = tok(text)["input_ids"][: a.max_tokens]
    x = torch.tensor([ids])
    with torch.no_grad():
        out = model(x, labels=x)
    json.dump({"transformers": transformers.__version__, "ids": ids, "nll": out.loss.item()}, open(os.path.join(folder, "hf.json"), "w"))
    open(os.path.join(folder, "hf_logits.bin"), "wb").write(out.logits.contiguous().numpy().tobytes())
    made.append({"name": name, "files": sorted(os.listdir(folder))})
print(json.dumps({"models": made}))
