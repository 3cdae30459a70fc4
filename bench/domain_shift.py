#!/usr/bin/env python
"""Domain-shift benchmark (issue 7): Grocery Store Dataset test-split phone photos as queries against
(a) the 81 iconic catalog images, one per product, and (b) the train-split photos.
R@1/R@5 for the off-the-shelf backbone and the fast-mode fine-tuned model, each with the query-time options
(full photo, centre crop, flip averaging, multi-crop + flip averaging).

    python bench/domain_shift.py [--img_size 128] [--per_product N] [--epochs 10] [--grocery PATH]

Run by hand (not in CI). Embeddings (catalogs and every query's 12 views) are cached under artifacts/embeddings, the
head checkpoint under artifacts/checkpoints, so a rerun takes seconds. Writes artifacts/reports/domain_shift/
(benchmark.csv, benchmark.md, summary.json). The last printed line is one JSON object:
{"iconic_r1_baseline", "iconic_r1_finetuned", "iconic_r1_best", "best_setting", ...}.
"""
import json, sys, time
from pathlib import Path
from fastcore.script import call_parse, store_true
from simsop.core import Config, shared_data, artifact_dir, write_json, atomic_write
from simsop.domain_shift import domain_shift_benchmark, benchmark_summary, benchmark_table


@call_parse
def main(grocery: str = None,        # Grocery Store Dataset folder (default: ../shared/data/grocery)
         img_size: int = None,       # backbone input size (default: Config().img_size)
         per_product: int = None,  # at most N test photos per product (default: all)
         epochs: int = None,         # head-training epochs (early stopping on the val photos)
         crop: float = 0.7,          # side fraction kept by the centre and corner crops
         artifacts: str = None,      # artifacts folder (caches, checkpoint, report; default: the project's)
         quiet: store_true = False,  # no progress bars
        ):
    "Domain-shift benchmark: Grocery test photos against the iconic catalog and the train photos; last line JSON."
    root = Path(grocery) if grocery else shared_data('grocery')
    if root is None: sys.exit('error: the Grocery Store Dataset was not found (pass --grocery PATH)')
    cfg = Config(**{k: v for k, v in dict(artifacts=artifacts, device='cpu', img_size=img_size).items() if v is not None})
    t0 = time.time()
    table = domain_shift_benchmark(root, cfg, per_product=per_product, crop=crop, epochs=epochs,
                                   progress=not quiet)
    secs = time.time() - t0
    out = artifact_dir(cfg, 'reports', 'domain_shift')
    wide = benchmark_table(table)
    table.to_csv(out/'benchmark.csv', index=False)
    info = dict(table.attrs, seconds=round(secs, 1), per_product=per_product, crop=crop)
    with atomic_write(out/'benchmark.md', 'w') as f:
        f.write(f"Grocery domain shift: {info}\n\n{wide.to_markdown(floatfmt='.3f')}\n")
    print(wide.to_markdown(floatfmt='.3f'))
    summary = dict(benchmark_summary(table), n_queries=info['n_queries'], img_size=info['img_size'],
                   backbone=info['backbone'], weights=info['weights'], seconds=info['seconds'])
    write_json(out/'summary.json', summary)
    print(json.dumps(summary), flush=True)

