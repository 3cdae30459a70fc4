"""Fine-tuning benchmark on the Grocery Store Dataset, class-disjoint, through the library calls the commands make.

`simsop_train --data GROCERY --classes TRAIN --val products` is `train_catalog`, `simsop_eval --data GROCERY --model RUN/best.pt
--classes TEST` is `evaluate_catalog`: this script is the data split (which products train, which test) and those two
calls, with the library's defaults unless an option here says otherwise. Every choice (checkpoint, head or backbone
output, stopping) is made by the run on its held-out training products; the test products are only evaluated.

    python bench/finetune_grocery.py                                  # products 0-39 -> 40-80, full mode, seed 0
    python bench/finetune_grocery.py --train 40-80 --test 0-39 --mode fast --loss ms

Last line: {"train", "test", "mode", "loss", "seed", "embed", "base_r1", "base_mapr", "r1", "mapr", "train_s",
"train_ips" (median training images per second), ...}.
"""
import json, time
import pandas as pd
from pathlib import Path
from fastcore.script import call_parse
from simsop.core import shared_data, Config
from simsop.training import TrainConfig, train_catalog
from simsop.search import evaluate_catalog


def finetune(train: str = '0-39', test: str = '40-80', mode: str = 'full', seed: int = 0, out: str = 'artifacts/bench_finetune',
             img_size: int = 224, progress: bool = False, **settings) -> dict:
    "Train on the `train` products (defaults + `settings`), evaluate off-the-shelf and fine-tuned on the `test` products' test photos."
    root = shared_data('grocery')
    if root is None: return dict(skipped='grocery data not found (../shared/data/grocery)')
    cfg = TrainConfig(img_size=img_size, seed=seed, device='cpu', **settings)
    run = Path(out)/f"{mode}_{cfg.loss}_{cfg.backbone}_{train}_s{seed}"
    t0 = time.time()
    res = train_catalog(cfg, root, run, mode, classes=train, progress=progress, val='products')   # class-disjoint: held-out products validate
    train_s = time.time() - t0
    base = evaluate_catalog(root, cfg.backbone, cfg=Config(img_size=img_size, device='cpu'), classes=test, progress=progress)
    ft = evaluate_catalog(root, res['best'], cfg=Config(device='cpu'), classes=test, progress=progress)
    return dict(train=train, test=test, mode=mode, loss=cfg.loss, seed=seed, embed=ft['embed'], best_step=res['best_step'],
                val_score=round(res['best_score'], 4), base_r1=round(base['R@1'], 4), base_mapr=round(base['MAP@R'], 4),
                r1=round(ft['R@1'], 4), mapr=round(ft['MAP@R'], 4), train_s=round(train_s, 1), message=res['message'],
                train_ips=round(float(pd.read_csv(run/'metrics.csv')['images_per_s'].median()), 1))


@call_parse
def main(train: str = '0-39',     # training products (class ids)
         test: str = '40-80',     # test products: their test-split photos, leave-one-out
         mode: str = 'full',      # 'full' (last stages + head on images) or 'fast' (head on cached features)
         loss: str = 'supcon',    # one of simsop.losses.LOSSES
         seed: int = 0,           # seed (also picks the validation products)
         img_size: int = 224,     # input size
         out: str = 'artifacts/bench_finetune'):  # run folders
    print(json.dumps(finetune(train, test, mode, seed, out, img_size, progress=True, loss=loss)))
