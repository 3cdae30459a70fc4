"""The loss family compared on Grocery, class-disjoint, both directions, several seeds (run by hand, not in CI).

Every run is `bench/finetune_grocery.py`'s `finetune`: the library's defaults (same backbone, 224 px, same epochs and
batches, frozen BatchNorm, same embedding size), only `--loss` differs; the checkpoint and the output (head or
backbone) are chosen on held-out *training* products with training images as distractors, as Musgrave et al. (2020)
ask. Products 0-39 train and 40-80 test, then the reverse. One JSON line per run is appended to `--results` (a rerun
skips the runs already there), then the table: mean and std over seeds of R@1, MAP@R and training seconds. In fast
mode only the head learns, so the runs embed with the head (`embed='head'`: what the loss trained; the library's
default would keep the off-the-shelf backbone whenever the head does not validate better); in full mode the output is
chosen as by default.

    python bench/losses.py --mode fast                       # head on cached features: about 10 min on 2 cores
    python bench/losses.py --mode full --losses supcon,ms,proxy_anchor,triplet_hard   # 24 runs, about 4 min each
"""
import json, sys
from pathlib import Path
from fastcore.script import call_parse
sys.path.insert(0, str(Path(__file__).parent))
from finetune_grocery import finetune
from simsop.losses import LOSSES
from simsop.training import runs_table

DIRECTIONS = (('0-39', '40-80'), ('40-80', '0-39'))


@call_parse
def main(mode: str = 'fast',                     # 'fast' or 'full'
         losses: str = ','.join(LOSSES),         # comma-separated names from simsop.losses.LOSSES
         seeds: str = '0,1,2',                   # comma-separated seeds
         epochs: int = None,                     # epochs of every run (default: the library's)
         directions: str = 'both',               # 'both', or one train range: '0-39' or '40-80'
         results: str = None,                    # JSON lines (default bench/results/losses_grocery_<mode>.jsonl)
         out: str = 'artifacts/bench_losses'):   # run folders
    path = Path(results or Path(__file__).parent/'results'/f'losses_grocery_{mode}.jsonl')
    rows = [json.loads(l) for l in path.read_text().splitlines() if l.strip()] if path.exists() else []
    done = {(r['train'], r['loss'], r['seed']) for r in rows}
    for tr, te in [d for d in DIRECTIONS if directions in ('both', d[0])]:
        for loss in losses.split(','):
            for seed in map(int, seeds.split(',')):
                if (tr, loss, seed) in done: continue
                r = finetune(tr, te, mode, seed, out, loss=loss, **({'epochs': epochs} if epochs else {}),
                             **({'embed': 'head'} if mode == 'fast' else {}))
                if 'skipped' in r: print(json.dumps(r)); return
                print(json.dumps(r), flush=True)
                with path.open('a') as f: f.write(json.dumps(r) + '\n')
                rows.append(r)
    print(runs_table([r for r in rows if r['mode'] == mode]).to_markdown(index=False))
