#!/usr/bin/env python
"""Domain-shift benchmark (issue 7): Grocery Store Dataset test-split phone photos as queries against
(a) the 81 iconic catalog images, one per product, and (b) the train-split photos.
R@1/R@5 for the off-the-shelf backbone and the fast-mode fine-tuned model, each with the query-time options
(full photo, centre crop, flip averaging, multi-crop + flip averaging).

    python bench/domain_shift.py [--img-size 128] [--max-per-class N] [--epochs 10] [--grocery PATH]

Run by hand (not in CI). Embeddings (catalogs and every query's 12 views) are cached under artifacts/embeddings, the
head checkpoint under artifacts/checkpoints, so a rerun takes seconds. Writes artifacts/reports/domain_shift/
(benchmark.csv, benchmark.md, summary.json). The last printed line is one JSON object:
{"iconic_r1_baseline", "iconic_r1_finetuned", "iconic_r1_best", "best_setting", ...}.
"""
import argparse, json, os, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--grocery', default=None, help='Grocery Store Dataset folder (default: ../shared/data/grocery)')
    ap.add_argument('--img-size', type=int, default=None, help='backbone input size (default: Config().img_size)')
    ap.add_argument('--max-per-class', type=int, default=None, help='at most N test photos per product (default: all)')
    ap.add_argument('--epochs', type=int, default=None, help='head-training epochs (early stopping on the val photos)')
    ap.add_argument('--crop', type=float, default=0.7, help='side fraction kept by the centre and corner crops')
    ap.add_argument('--artifacts', default=str(ROOT/'artifacts'), help='artifacts folder (caches, checkpoint, report)')
    ap.add_argument('--quiet', action='store_true', help='no progress bars')
    a = ap.parse_args(argv)
    from simsop.core import Config, shared_data, artifact_dir, write_json, atomic_write
    from simsop.domain_shift import domain_shift_benchmark, benchmark_summary, benchmark_table
    root = Path(a.grocery) if a.grocery else shared_data('grocery')
    if root is None: sys.exit('error: the Grocery Store Dataset was not found (pass --grocery PATH)')
    kw = dict(artifacts=a.artifacts, device='cpu')
    if a.img_size: kw['img_size'] = a.img_size
    cfg = Config(**kw)
    t0 = time.time()
    table = domain_shift_benchmark(root, cfg, max_per_class=a.max_per_class, crop=a.crop, epochs=a.epochs,
                                   progress=not a.quiet)
    secs = time.time() - t0
    out = artifact_dir(cfg, 'reports', 'domain_shift')
    wide = benchmark_table(table)
    table.to_csv(out/'benchmark.csv', index=False)
    info = dict(table.attrs, seconds=round(secs, 1), max_per_class=a.max_per_class, crop=a.crop)
    with atomic_write(out/'benchmark.md', 'w') as f:
        f.write(f"Grocery domain shift: {info}\n\n{wide.to_markdown(floatfmt='.3f')}\n")
    print(wide.to_markdown(floatfmt='.3f'))
    summary = dict(benchmark_summary(table), n_queries=info['n_queries'], img_size=info['img_size'],
                   backbone=info['backbone'], weights=info['weights'], seconds=info['seconds'])
    write_json(out/'summary.json', summary)
    print(json.dumps(summary), flush=True)


if __name__ == '__main__':
    main()
