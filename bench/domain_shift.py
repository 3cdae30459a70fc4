#!/usr/bin/env python
"""Domain-shift benchmark (issues 7 and 14): Grocery Store Dataset val and test phone photos as queries against
(a) the 81 iconic catalog images, one per product, and (b) the train-split photos. R@1/R@5 for the off-the-shelf
backbone, a fast-mode head trained on the train photos only, and what `simsop_train --mode fast --img_size N` makes of
the dataset folder with its defaults (the iconic images join the training rows, copies chosen on the val photos), each
with every query mode of `simsop.search.QUERY_MODES` (full
photo, centre crop, flip, multi-crop, and the object-focus modes: the photo averaged with its SCDA box crop or its
GrabCut-refined box crop, with flip or multi-crop). The setting is chosen on the val photos and reported on the test
photos.

    python bench/domain_shift.py [--img_size 224] [--per_product N] [--epochs 10] [--grocery PATH] [--sweep]

`--sweep` also tries the SCDA threshold and box margin, and object focus on the catalog images, on the val photos
only (the baseline model), which is how `OBJECT_THR` and `OBJECT_MARGIN` were chosen.

Run by hand (not in CI). Embeddings (catalogs and every query's views) are cached under artifacts/embeddings, the
head checkpoint under artifacts/checkpoints, so a rerun takes seconds. Writes artifacts/reports/domain_shift/
(benchmark.csv, benchmark.md, summary.json). The last printed line is one JSON object: test iconic R@1 of the baseline,
the photo-only head and the setting chosen on val, the largest loss of any mode against the full photo on the
train-photo catalog, and the median milliseconds per query of each mode on this machine.
"""
import json, sys, time
from pathlib import Path
import numpy as np, torch
from fastcore.script import call_parse, store_true
from simsop.core import Config, shared_data, artifact_dir, write_json, atomic_write
from simsop.data import read_grocery, read_grocery_catalog
from simsop.backbones import create_backbone, get_data_config, extract_embeddings, split_transform
from simsop.retrieval import evaluate
from simsop.search import QUERY_MODES, object_boxes, box_crop, backbone_features, prepare_query
from simsop.domain_shift import domain_shift_benchmark, benchmark_summary, benchmark_table, query_cost_ms


def sweep(root, cfg, progress):
    "Val-photo iconic R@1 of the object crop per SCDA threshold and margin, and with the catalog images cropped too."
    bb = create_backbone(cfg.backbone, cfg.weights); dc = get_data_config(bb, cfg.img_size); tf, mean, std = split_transform(dc)
    val, ic = read_grocery(root, ('val',)), read_grocery_catalog(root)
    emb = lambda ims: torch.cat([backbone_features(bb, torch.from_numpy(np.stack([np.asarray(tf(i)) for i in ims[s:s + 64]])), mean, std)
                                for s in range(0, len(ims), 64)]).numpy()
    qi, ci = [prepare_query(p) for p in val.path], [prepare_query(p) for p in ic.path]
    G = emb(ci); ql, gl = val.class_id.to_numpy(), ic.class_id.to_numpy()
    r1 = lambda Q, G=G: round(float(evaluate(Q, ql, G, gl, ks=(1,))['R@1']), 4)
    rows = [dict(thr=None, margin=None, catalog='full', r1=r1(emb(qi)))]
    for thr in (0.5, 1.0, 1.5):
        bq = [b for s in range(0, len(qi), 64) for b in object_boxes(bb, qi[s:s + 64], dc, thr)]
        bc = object_boxes(bb, ci, dc, thr)
        for margin in (0.0, 0.15, 0.3, 0.5):
            Q = emb([box_crop(i, b, margin) for i, b in zip(qi, bq)])
            rows.append(dict(thr=thr, margin=margin, catalog='full', r1=r1(Q)))
            rows.append(dict(thr=thr, margin=margin, catalog='object', r1=r1(Q, emb([box_crop(i, b, margin) for i, b in zip(ci, bc)]))))
            if progress: print(rows[-2], rows[-1], flush=True)
    return rows


@call_parse
def main(grocery: str = None,        # Grocery Store Dataset folder (default: ../shared/data/grocery)
         img_size: int = None,       # backbone input size (default: Config().img_size)
         per_product: int = None,    # at most N test photos per product (default: all)
         epochs: int = None,         # head-training epochs (early stopping on the val photos)
         crop: float = 0.7,          # side fraction kept by the centre and corner crops
         artifacts: str = None,      # artifacts folder (caches, checkpoint, report; default: the project's)
         sweep_params: store_true = False,  # also sweep the SCDA threshold and margin on the val photos
         cost_n: int = 20,           # val photos timed one at a time per mode
         quiet: store_true = False,  # no progress bars
        ):
    "Domain-shift benchmark: Grocery val/test photos against the iconic catalog and the train photos; last line JSON."
    root = Path(grocery) if grocery else shared_data('grocery')
    if root is None: sys.exit('error: the Grocery Store Dataset was not found (pass --grocery PATH)')
    cfg = Config(**{k: v for k, v in dict(artifacts=artifacts, device='cpu', img_size=img_size).items() if v is not None})
    out = artifact_dir(cfg, 'reports', 'domain_shift')
    if sweep_params:
        rows = sweep(root, cfg, not quiet); write_json(out/'sweep.json', rows)
        print('\n'.join(json.dumps(r) for r in rows))
    t0 = time.time()
    table = domain_shift_benchmark(root, cfg, per_product=per_product, crop=crop, epochs=epochs, progress=not quiet)
    secs = time.time() - t0
    bb = create_backbone(cfg.backbone, cfg.weights)
    cost = query_cost_ms(bb, read_grocery(root, ('val',)).path.tolist()[:cost_n], tuple(QUERY_MODES), get_data_config(bb, cfg.img_size))
    table.to_csv(out/'benchmark.csv', index=False)
    info = dict(table.attrs, seconds=round(secs, 1), per_product=per_product, crop=crop, torch_threads=torch.get_num_threads())
    with atomic_write(out/'benchmark.md', 'w') as f:
        for sp in ('val', 'test'):
            f.write(f"Grocery domain shift, {sp} photos: {info}\n\n{benchmark_table(table, sp).to_markdown(floatfmt='.3f')}\n\n")
        f.write(f'ms per query: {cost}\n')
    for sp in ('val', 'test'): print(f'\n{sp} photos\n' + benchmark_table(table, sp).to_markdown(floatfmt='.3f'))
    summary = dict(benchmark_summary(table), ms_per_query=cost, n_queries=info['n_queries'], n_val=info['n_val'],
                   img_size=info['img_size'], backbone=info['backbone'], weights=info['weights'], seconds=info['seconds'])
    write_json(out/'summary.json', summary)
    print(json.dumps(summary), flush=True)
