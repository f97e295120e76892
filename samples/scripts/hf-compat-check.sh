#!/usr/bin/env bash
# Does Hugging Face transformers load every kind of checkpoint pip-prune writes, and does it score it as Pip does?
# Writes each kind from the demo model (and a random tiny OPT), scores the same text with `pip-prune eval` and with
# the hf-sandbox's check.py (AutoModelForCausalLM, no custom code), and prints a Markdown table: whether transformers
# loads it, both NLLs, their difference. A development aid: needs the hf-sandbox (../shared/tools/hf-sandbox beside the repository
# root; or HF_SANDBOX_TOOLS) and a Release build of src/Pip.Cli; takes a few minutes on two cores.
#   samples/scripts/hf-compat-check.sh [WORK_DIR]      (default /tmp/pip-hf-compat; the table is also written to WORK_DIR/table.md)
set -euo pipefail
cd "$(dirname "$0")/../.."  # repository root
root=$PWD
bin="$root/src/Pip.Cli/bin/Release/net10.0/pip-prune"
[ -x "$bin" ] || { echo "build src/Pip.Cli first: dotnet build src/Pip.Cli -c Release" >&2; exit 2; }
sandbox=${HF_SANDBOX_TOOLS:-$(cd .. && pwd)/shared/tools/hf-sandbox}
[ -x "$sandbox/run.sh" ] || { echo "hf-sandbox not found at $sandbox (set HF_SANDBOX_TOOLS)" >&2; exit 2; }
work=${1:-/tmp/pip-hf-compat}
rm -rf "$work"; mkdir -p "$work"
export OMP_WAIT_POLICY=PASSIVE
demo="$root/models/pip-demo"
corpus="$root/data/calibration/brown-sample.txt"
text="$work/eval.txt"
head -c 3000 "$corpus" > "$text"
tokens=128
quiet=(--log-level Warning)

pip() { "$bin" "$@" "${quiet[@]}" > "$work/last.json" 2> "$work/last.err" || { echo "pip-prune $1 failed:" >&2; cat "$work/last.err" >&2; exit 1; }; }

# Outputs: name, folder, how it was made.
rows=()
add() { rows+=("$1|$2|$3"); }

echo "writing the checkpoints to $work …" >&2
pip prune --model "$demo" --out "$work/depth" --metric block-influence --strategy one-shot --layers 2 --samples 4 --json
add "depth: 2 of 12 layers removed (block-influence)" depth "prune --layers 2"
for layout in per-layer compatible; do
  pip prune --model "$demo" --out "$work/width-uniform-$layout" --mode width --ratio 0.2 --samples 4 --layout $layout --json
  add "width, uniform over layers 2–10 (default), $layout" "width-uniform-$layout" "prune --mode width --ratio 0.2 --layout $layout"
  pip prune --model "$demo" --out "$work/width-adaptive-$layout" --mode width --metric flap --allocation adaptive --bias-compensation --ratio 0.2 --samples 4 --layout $layout --json
  add "width, adaptive (FLAP, bias compensation), $layout" "width-adaptive-$layout" "prune --mode width --metric flap --allocation adaptive --bias-compensation --ratio 0.2 --layout $layout"
done
pip prune --model "$demo" --out "$work/width-uniform-all" --mode width --ratio 0.2 --samples 4 --layer-start 0 --layer-end 12 --json
add "width, uniform over all 12 layers (auto: no padding needed)" width-uniform-all "prune --mode width --ratio 0.2 --layer-start 0 --layer-end 12"
for layout in per-layer auto; do
  pip prune --model "$demo" --out "$work/width-heads-all-$layout" --mode width --units heads --ratio 0.06 --samples 4 --layer-start 0 --layer-end 12 --layout $layout --json
  add "width, 1 of 4 key/value groups removed in all 12 layers, $layout" "width-heads-all-$layout" "prune --mode width --units heads --ratio 0.06 --layer-start 0 --layer-end 12 --layout $layout"
done
pip recover --model "$work/depth" --out "$work/recover" --text "$corpus" --steps 4 --batch-size 2 --seq-len 64 --json
add "LoRA-merged (recover of the depth-pruned model)" recover "recover --steps 4"
pip recover --model "$work/width-adaptive-compatible" --out "$work/recover-width" --text "$corpus" --steps 4 --batch-size 2 --seq-len 64 --json
add "LoRA-merged (recover of the adaptive compatible model)" recover-width "recover --steps 4"
pip idea --model "$demo" --out "$work/idea" --text "$corpus" --target-intermediate 256 --steps 6 --interval 1 --batch-size 2 --seq-len 64 --json
add "IDEA-pruned (FFN 352 → 256)" idea "idea --target-intermediate 256 --steps 6"
pip distill --student "$work/width-uniform-compatible" --teacher "$demo" --out "$work/distill" --text "$corpus" --steps 4 --batch-size 2 --seq-len 64 --json
add "knowledge-distilled (student: width uniform, compatible)" distill "distill --steps 4"
pip create-random --out "$work/opt" --preset opt-tiny --seed 5 --tokenizer-corpus "$corpus" --json
pip prune --model "$work/opt" --out "$work/opt-depth" --metric block-influence --strategy one-shot --layers 1 --samples 4 --json
add "OPT (random opt-tiny), depth: 1 layer removed" opt-depth "prune --layers 1"
for layout in per-layer compatible; do
  pip prune --model "$work/opt" --out "$work/opt-width-$layout" --mode width --ratio 0.15 --samples 4 --layout $layout --json
  add "OPT, width (heads + FFN, default range), $layout" "opt-width-$layout" "prune --mode width --ratio 0.15 --layout $layout"
done
pip prune --model "$work/opt" --out "$work/opt-width-ffn-all" --mode width --units channels --ratio 0.15 --samples 4 --layer-start 0 --layer-end 64 --json
add "OPT, width (FFN only, all layers: standard ffn_dim)" opt-width-ffn-all "prune --mode width --units channels --layer-start 0"

echo "scoring $tokens tokens of $text with Pip and with transformers …" >&2
versions=""
table="| output | config | parameters stored | transformers loads it | NLL Pip | NLL transformers | difference |\n| --- | --- | ---: | --- | ---: | ---: | ---: |\n"
failures=0
for row in "${rows[@]}"; do
  IFS='|' read -r name folder how <<<"$row"
  dir="$work/$folder"
  pip eval --model "$dir" --text "$text" --window $tokens --max-tokens $tokens --dtype float32 --json
  pipNll=$(python3 -c 'import json,sys; print("%.7f" % json.load(sys.stdin)["nll"])' < "$work/last.json")
  pip inspect --model "$dir" --json
  stored=$(python3 -c 'import json,sys; print("{:,}".format(json.load(sys.stdin)["parameters"]["total"]))' < "$work/last.json")
  shape=$(python3 - "$dir/config.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
parts = []
if "per_layer_config" in c: parts.append("per_layer_config (%d layers)" % len(c["per_layer_config"]))
else: parts.append("uniform")
ffn = c.get("intermediate_size", c.get("ffn_dim"))
parts.append("heads %s/%s, ffn %s" % (c["num_attention_heads"], c.get("num_key_value_heads", c["num_attention_heads"]), ffn))
print(", ".join(parts))
EOF
)
  if "$sandbox/run.sh" check.py "$dir" "$text" --max-tokens $tokens --bos > "$work/hf.json" 2> "$work/hf.err"; then
    read -r hfNll versions < <(python3 -c 'import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); print("%.7f" % d["nll"], "transformers", d["transformers"] + ", torch", d["torch"])' < "$work/hf.json")
    diff=$(python3 -c "print('%.1e' % abs($pipNll - $hfNll))")
    table+="| $name | $shape | $stored | yes | $pipNll | $hfNll | $diff |\n"
  else
    reason=$(grep -E 'Error|error' "$work/hf.err" | tail -1 | sed -E 's/^ +//' | cut -c1-110 | sed 's/|/\\|/g')
    table+="| $name | $shape | $stored | **no**: ${reason:-see $work/hf.err} | $pipNll | — | — |\n"
    failures=$((failures + 1))
  fi
done
printf "%b" "$table" | tee "$work/table.md"
echo
echo "${versions:-transformers: no checkpoint loaded}; $tokens tokens of $(basename "$corpus") (first 3000 bytes), Pip in float32, transformers in float32 with BOS; $failures output(s) transformers does not load"
