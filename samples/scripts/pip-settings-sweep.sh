#!/usr/bin/env bash
# PIP sensitivity sweep on the demo model: which layers does PIP remove under each setting? (pruning only; build
# src/Pip.Cli in Release first). RATIOS="0.2 0.3" by default; prints "setting ratio layers" lines.
cd "$(dirname "$0")/../.."  # repository root
bin=src/Pip.Cli/bin/Release/net10.0/pip-prune
run() { # name ratio args...
  local name=$1 ratio=$2; shift 2
  local out=/tmp/pip-sweep/$name-$ratio
  local json; json=$($bin prune --ratio $ratio --out $out --overwrite --json --log-level Warning "$@" 2>/dev/null)
  local layers; layers=$(python3 -c "import json,sys; d=json.loads(sys.stdin.read()); print(','.join(str(x) for x in sorted(d.get('removed_original_layers') or d.get('removed_layers') or [])))" <<<"$json")
  echo "$name $ratio $layers"
}
for r in ${RATIOS:-0.2 0.3}; do
  run default $r
  for s in 1 2 3 4; do run seed$s $r --seed $s; done
  run samples4 $r --samples 4
  run samples16 $r --samples 16
  run L1 $r --norm L1
  run Linf $r --norm Linf
  run summed $r --aggregation summed
  run rate0.05 $r --rate 0.05
  run rate0.2 $r --rate 0.2
  run rate0.4 $r --rate 0.4
  run nodisc $r --no-discriminator
  run cv0.1 $r --cv-threshold 0.1
  run sets5 $r --sets 5
  run randomchar $r --perturber random-char
  run guard1 $r --guard-first 1 --guard-last 1
done
