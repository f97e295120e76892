# Usage: python3 samples/scripts/llama2c/make_untied.py OUT_DIR
# Writes OUT_DIR/m.bin, a random llama2.c checkpoint with an untied classifier (negative vocab_size) and GQA
# (dim 16, hidden 24, 2 layers, 4 heads, 2 KV heads, vocabulary 300, seq_len 32, seed 1), and OUT_DIR/tok.bin, a
# 300-token llama2.c tokenizer (<unk>, BOS, EOS, 256 byte pieces, 41 pieces ranked by score).
import os, random, struct, sys
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
random.seed(1)
dim, hidden, L, H, KV, V, S = 16, 24, 2, 4, 2, 300, 32
hs = dim // H; kv = KV * hs
n = V*dim + L*(2*dim + 2*dim*dim + 2*kv*dim + 3*dim*hidden) + dim + S*hs + V*dim
with open(os.path.join(out, 'm.bin'), 'wb') as f:
    f.write(struct.pack('<7i', dim, hidden, L, H, KV, -V, S))
    f.write(struct.pack('<%df' % n, *[random.gauss(0, 0.3) for _ in range(n)]))
pieces = [("<unk>", 0.0), ("\n<s>\n", 0.0), ("\n</s>\n", 0.0)] + [("<0x%02X>" % b, 0.0) for b in range(256)]
words = [" ", "e", "t", "a", "o", "n", " t", "th", " th", "he", " the", "in", " a", "an", "er", "re", "on", " o", "s", "h", "i",
         "r", "d", " s", "nd", " an", " and", "l", "u", "c", "m", "w", "f", "g", "y", "p", "b", ".", ",", "v", "k"]
pieces += [(w, -float(i)) for i, w in enumerate(words)]
with open(os.path.join(out, 'tok.bin'), 'wb') as f:
    f.write(struct.pack('<i', 16))
    for p, s in pieces:
        b = p.encode()
        f.write(struct.pack('<fi', s, len(b)))
        f.write(b)
