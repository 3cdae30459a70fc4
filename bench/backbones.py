"""The offline backbones compared on Grocery: EfficientNet-Lite0, Lite1 and Lite2 (ImageNet weights from PyPI), each at
its native input size (224, 240, 260 px), on 2 CPU cores (run by hand, not in CI).

Per backbone:
  * extraction speed: end-to-end images per second of `extract_embeddings` (decode, resize, forward; amp='auto', which
    is bf16 on CPUs that have it) over the Grocery train photos;
  * off-the-shelf quality on the *train* photos (2,640, every photo a query against the others): the data the choice of
    the CPU default is made on, and on the test photos (2,485), reported only;
  * fine-tuned quality through `bench/finetune_grocery.py`'s `finetune` (library defaults; products 0-39 train, the
    test photos of 40-80 are evaluated), with the training images per second from the run's log.
The choice (`choose`), on the train photos only: the fastest backbone stays the CPU default unless a slower one, at
least half as fast, is better on both R@1 and MAP@R there (a CPU user pays the time on every image). Last line: JSON with one row per backbone and the choice.

    python bench/backbones.py            # about 20 min on 2 cores
"""
import json, sys, time
from pathlib import Path
import pandas as pd
from fastcore.script import call_parse
sys.path.insert(0, str(Path(__file__).parent))
from finetune_grocery import finetune
from simsop.core import shared_data, Config, artifact_dir
from simsop.data import read_grocery
from simsop.backbones import OFFLINE_ARCHS, create_backbone, get_data_config, extract_embeddings
from simsop.retrieval import evaluate


def choose(rows: list[dict], min_speed: float = 0.5) -> str:
    """The fastest backbone, unless a slower one at least `min_speed` x as fast is better on both R@1 and MAP@R of the
    train photos (then the best such by MAP@R): a user pays the time on every image, so a slower model must win clearly."""
    rows = sorted(rows, key=lambda r: -r['e2e_ips'])
    best = rows[0]
    better = [r for r in rows[1:] if r['e2e_ips'] >= min_speed * best['e2e_ips']
              and r['train_r1'] > best['train_r1'] and r['train_mapr'] > best['train_mapr']]
    return max(better, key=lambda r: r['train_mapr'])['backbone'] if better else best['backbone']


@call_parse
def main(finetune_archs: str = ','.join(OFFLINE_ARCHS),   # fine-tune these too (products 0-39 -> 40-80, seed 0); '' for none
         out: str = 'artifacts/bench_backbones'):
    root = shared_data('grocery')
    if root is None: print(json.dumps(dict(skipped='grocery data not found'))); return
    df = read_grocery(root, splits=('train', 'test'))
    tr, te = df[df.split == 'train'].reset_index(drop=True), df[df.split == 'test'].reset_index(drop=True)
    rows = []
    for arch in OFFLINE_ARCHS:
        bb = create_backbone(arch, 'offline')
        size = bb.pretrained_cfg['input_size'][-1]
        dc = get_data_config(bb, size)
        t = time.perf_counter()
        ftr = extract_embeddings(bb, tr, data_config=dc, progress=False)   # no cache: timed
        ips = len(tr) / (time.perf_counter() - t)
        fte = extract_embeddings(bb, te, data_config=dc, progress=False)
        a, b = evaluate(ftr, tr.class_id.to_numpy()), evaluate(fte, te.class_id.to_numpy())
        row = dict(backbone=arch, img_size=size, e2e_ips=round(ips, 1), train_r1=round(a['R@1'], 4), train_mapr=round(a['MAP@R'], 4),
                   test_r1=round(b['R@1'], 4), test_mapr=round(b['MAP@R'], 4))
        if arch in finetune_archs.split(','):
            r = finetune('0-39', '40-80', 'full', 0, out, size, backbone=arch)
            row.update(ft_base_r1=r['base_r1'], ft_base_mapr=r['base_mapr'], ft_r1=r['r1'], ft_mapr=r['mapr'], ft_embed=r['embed'],
                       train_s=r['train_s'], train_ips=r['train_ips'])
        print(json.dumps(row), flush=True)
        rows.append(row)
    print(pd.DataFrame(rows).to_markdown(index=False))
    print(json.dumps(dict(rows=rows, choice=choose(rows))))
