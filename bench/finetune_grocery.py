"""Fine-tuning benchmark on the Grocery Store Dataset, class-disjoint (run by hand, not in CI).

Train on the train-split photos of products 0-39 (a class-disjoint fifth of them held out for early stopping), evaluate
within the test-split photos of products 40-80 (leave-one-out: every photo a query, the others the gallery).
Backbone `tf_efficientnet_lite0` with the offline ImageNet weights. Off-the-shelf embeddings vs the fine-tuned model:
`--mode fast` (frozen backbone, head trained on cached features) or `--mode full` (fine-tune the last `--train_blocks`
stages of the backbone together with the head, on images). Every choice is made on training products only: the head
width by `pca_start_cv` (5 class-disjoint folds of the 40 training products), the checkpoint by validation MAP@R.
Full mode reports both outputs of the fine-tuned model, the head's and the backbone's (head discarded, as the SupCon
paper evaluates); `--embed` says which one goes into the JSON line (default: backbone).

    python bench/finetune_grocery.py                 # fast mode (seconds once the features are cached)
    python bench/finetune_grocery.py --mode full     # last 2 stages + head at 224 px, 3 epochs (about 3 min on 2 quiet CPU cores)

Last line: {"baseline_r1", "baseline_mapr", "finetuned_r1", "finetuned_mapr", "mode", "train_s"} (full mode adds
"embed", the head output's "head_r1" / "head_mapr", and "embed_dim").
"""
import json, time, dataclasses
from pathlib import Path
from fastcore.script import call_parse
import torch
from simsop.core import shared_data, artifact_dir, Config, fingerprint
from simsop.data import read_grocery, class_disjoint_split
from simsop.backbones import create_backbone, get_data_config, extract_embeddings
from simsop.retrieval import evaluate
from simsop.training import TrainConfig, train, train_head, load_model, pca_start_cv, choose_embed_dim


@call_parse
def main(mode: str = 'fast',          # 'fast' (head on cached features) or 'full' (last stages + head on images)
         epochs: int = None,          # default: 6 (fast), 3 (full)
         batch_size: int = None,      # P x K; default 64 (fast), 32 (full)
         k: int = 4,                  # images per product in a batch
         lr_head: float = None,       # default 3e-4 (both modes)
         lr_backbone: float = 3e-5,   # full mode (low: the pretrained features are the starting point)
         train_blocks: int = 2,       # full mode: last n backbone stages trained
         img_size: int = 224,         # input size of the baseline and of every evaluation
         train_size: int = None,      # full mode: training input size (default img_size; smaller is faster on a CPU)
         temperature: float = 0.1,    # SupCon temperature
         feat_noise: float = 0.0,     # fast mode: feature noise
         feat_dropout: float = 0.0,   # fast mode: feature dropout
         head_hidden: int = 1024,     # head width
         embed_dim: int = 0,          # head output size; 0: the narrowest of 128/256/512/1024 whose PCA start keeps the
                                      # off-the-shelf R@1 and MAP@R over 5 class-disjoint folds of the training products
         head_init: str = 'pca',      # 'pca' (residual head, linear path = PCA of the training features), 'random', 'auto'
         embed: str = None,           # full mode: what the fine-tuned model embeds with, 'backbone' (default: the head
                                      # discarded, as the SupCon paper evaluates) or 'head'; fast mode: always 'head'
         select: str = 'MAP@R',       # validation metric for the best checkpoint / early stopping
         weight_decay: float = 0.05,  # AdamW weight decay
         patience: int = 5,           # early stopping (validations)
         max_steps: int = 0,          # stop after this many steps (0: all epochs; e.g. a smoke run of --mode full)
         seed: int = 0,               # seed
         artifacts: str = 'artifacts',  # artifacts folder (embedding cache, runs)
         fresh: bool = False,         # ignore an earlier run's checkpoints
):
    root = shared_data('grocery')
    if root is None:
        print(json.dumps(dict(skipped='grocery data not found'))); return
    torch.manual_seed(seed)
    df = read_grocery(root, splits=('train', 'test'))
    tr = df[(df.split == 'train') & (df.class_id <= 39)].reset_index(drop=True)
    te = df[(df.split == 'test') & (df.class_id >= 40)].reset_index(drop=True)
    tr_df, va_df = class_disjoint_split(tr, val_frac=0.2, seed=seed)
    print(f'train: {len(tr_df)} photos of {tr_df.class_id.nunique()} products; early-stopping val: {len(va_df)} photos of '
          f'{va_df.class_id.nunique()} products; test: {len(te)} photos of {te.class_id.nunique()} products (40-80)')

    base = Config(artifacts=artifacts)
    cache = artifact_dir(base, 'embeddings')
    bb = create_backbone('tf_efficientnet_lite0', 'offline')
    dc = get_data_config(bb, img_size)
    b = evaluate(extract_embeddings(bb, te, data_config=dc, cache_dir=cache, name='grocery_te'), te.class_id.values)
    print(f"baseline (off-the-shelf, {bb.num_features}-d): R@1 {b['R@1']:.4f}  MAP@R {b['MAP@R']:.4f}")

    ftr = extract_embeddings(bb, tr, data_config=dc, cache_dir=cache, name='grocery_tr')   # all 40 training products, cached
    row = {p: i for i, p in enumerate(tr.path)}
    ti, vi = [row[p] for p in tr_df.path], [row[p] for p in va_df.path]
    if not embed_dim:
        tab = pca_start_cv(ftr, tr.class_id.values, seed=seed)   # training products only (5 folds of 8 held out)
        embed_dim = choose_embed_dim(tab)
        print('held-out training products (5-fold mean), before training:\n' +
              tab[['embed_dim', 'start', 'R@1', 'MAP@R']].round(4).to_string(index=False))
        print(f'embed_dim {embed_dim}: the narrowest PCA start that keeps the off-the-shelf R@1 and MAP@R')
    fast = mode == 'fast'
    cfg = TrainConfig(artifacts=artifacts, backbone='tf_efficientnet_lite0', weights='offline', img_size=train_size or img_size,
                      batch_size=batch_size or (64 if fast else 32), k=k, epochs=epochs or (6 if fast else 3),
                      lr_head=lr_head or 3e-4, lr_backbone=lr_backbone, train_blocks=train_blocks if not fast else 0,
                      temperature=temperature, feat_noise=feat_noise, feat_dropout=feat_dropout, head_hidden=head_hidden, embed_dim=embed_dim,
                      weight_decay=weight_decay, patience=patience, head_init=head_init, select=select, seed=seed, device='cpu', num_workers=0 if fast else 2,
                      ckpt_every=200 if fast else 25, max_steps=max_steps)
    out = artifact_dir(base, 'checkpoints') / f'grocery_{mode}-{fingerprint(cfg.to_dict())}'   # a changed setting never resumes an old run
    if fresh and out.exists():
        for f in out.glob('*.pt'): f.unlink()
    t0 = time.time()
    if fast:   # what train_fast does, with the one cached extraction of all 40 products' photos sliced into train / val
        nt = torch.get_num_threads(); torch.set_num_threads(1)   # a small MLP: extra OpenMP threads only spin on a busy CPU
        try: res = train_head(ftr[ti], tr_df.class_id.values, ftr[vi], va_df.class_id.values, cfg, out, data_config=dc)
        finally: torch.set_num_threads(nt)
    else: res = train(cfg, tr_df, va_df, out)
    train_s = time.time() - t0   # training only (the training photos' features were extracted, or read from the cache, above)
    print(f"trained {res['step']} steps in {train_s:.0f}s; best val {res['select']} {res['best_score']:.4f} (R@1 {res['best_r1']:.4f}) at step {res['best_step']}")

    embed = 'head' if fast else (embed or 'backbone')
    if fast and embed != 'head': raise SystemExit("fast mode trains only the head: --embed backbone would be the baseline")
    res_of = {}
    for e in (['head'] if fast else ['head', 'backbone']):   # full mode: both outputs, reported; `embed` is the one in the JSON
        model = load_model(res['best'], embed=e)   # through the same extraction path as any model
        r = evaluate(extract_embeddings(model, te, data_config=dc, cache_dir=cache, name=f'grocery_test_{mode}_{e}'), te.class_id.values)
        res_of[e] = r
        print(f"fine-tuned ({mode}, {e} output, {model.num_features}-d): R@1 {r['R@1']:.4f}  MAP@R {r['MAP@R']:.4f}")
    f = res_of[embed]
    extra = {} if fast else dict(embed=embed, head_r1=round(res_of['head']['R@1'], 4), head_mapr=round(res_of['head']['MAP@R'], 4),
                                 embed_dim=embed_dim)
    print(json.dumps(dict(baseline_r1=round(b['R@1'], 4), baseline_mapr=round(b['MAP@R'], 4), finetuned_r1=round(f['R@1'], 4),
                          finetuned_mapr=round(f['MAP@R'], 4), mode=mode, train_s=round(train_s, 1), **extra)))
