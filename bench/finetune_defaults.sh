#!/bin/bash
# Issue 12 acceptance 1: Grocery class-disjoint, both directions, 3 seeds; library defaults only.
# Usage: bash bench/finetune_defaults.sh   (about 15 min on 2 cores; one line per run, then compare with the off-the-shelf line)
cd "$(dirname "$0")/.." && export PATH=$PWD/.venv/bin:$PATH
G=../shared/data/grocery; O=${OUT:-artifacts/finetune_defaults}; mkdir -p $O
for dir in "0-39 40-80" "40-80 0-39"; do
  set -- $dir; TR=$1; TE=$2
  simsop_eval --data $G --model tf_efficientnet_lite0 --classes $TE --img_size 224 --json --quiet | tail -1 > $O/base_$TE.json
  for seed in 0 1 2; do
    R=$O/tr${TR}_s$seed
    /usr/bin/time -f "%e s" simsop_train --data $G --classes $TR --val products --img_size 224 --seed $seed --out $R --quiet 2> $R.err | tail -1 > $R.train.json
    simsop_eval --data $G --model $R/best.pt --classes $TE --json --quiet | tail -1 > $R.eval.json
    echo "$TR -> $TE seed $seed: $(cat $R.eval.json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["embed"], round(d["R@1"],4), round(d["MAP@R"],4))') base $(python3 -c "import json; d=json.load(open('$O/base_$TE.json')); print(round(d['R@1'],4), round(d['MAP@R'],4))") $(tail -1 $R.err)"
  done
done
