#!/usr/bin/env python
"""Embedding extraction throughput on the Grocery Store Dataset's 2,485 test JPEGs (tf_efficientnet_lite0, 224 px).

Three measurements in one run, interleaved over `--rounds` rounds (best of the rounds is reported, so a busy machine
hurts every figure alike rather than one of them):

* `model_ips`: model only, on pre-decoded, pre-normalised tensors in memory (the ceiling);
* `e2e_ips`:   `simsop.backbones.extract_embeddings` from the files on disk (workers decode while the model runs);
* `naive_ips`: the plain loop one writes without the pipeline: PIL open, the timm eval transform, stack a batch,
  forward under `torch.no_grad()` in PyTorch's default (contiguous) memory format; one process, no workers, no draft
  decode;
* `naive_cl_ips` (extra, for transparency): the same plain loop with only the model made channels-last and run under
  inference mode, i.e. what is left of the gain once the model itself is tuned like the pipeline's.

`model_ips` and `e2e_ips` run the model the same way (inference mode, channels-last, fp32, same batch size and
threads), so they differ only in how images reach it. Where the CPU computes bf16 natively (detected; `--no_bf16` skips them),
`model_bf16_ips` and `e2e_bf16_ips` are the same two under bf16 autocast, and `r1_bf16` / `mapr_bf16` the retrieval
quality of the bf16 embeddings beside fp32's `r1` / `mapr` (`amp='auto'` picks bf16 on such CPUs). `r1` is the within-test Recall@1 (leave-one-out, `simsop.retrieval.evaluate`)
of the end-to-end embeddings. The last line printed is one JSON object.

    python bench/extract.py [--rounds 2] [--batch_size 64] [--limit N] [--no_bf16]
"""
from __future__ import annotations
import os, sys, json, time
from fastcore.script import call_parse, store_true
os.environ.setdefault('HF_HUB_OFFLINE', '1')
import numpy as np, torch, torch.nn.functional as F
from PIL import Image
from simsop.core import shared_data, cpu_has_bf16, amp_dtype
from simsop.data import read_grocery, make_transform, ImageDataset
from simsop.backbones import create_backbone, get_data_config, extract_embeddings, OFFLINE_ARCH
from simsop.retrieval import evaluate


def model_only(model, x_all, batch_size, dtype=None):
    "Images per second of the forward pass alone on pre-decoded tensors (under autocast `dtype`, e.g. bf16)."
    t = time.perf_counter(); out = []
    with torch.inference_mode(), torch.autocast('cpu', dtype=dtype or torch.float32, enabled=dtype is not None):
        for s in range(0, len(x_all), batch_size):
            x = x_all[s:s + batch_size].contiguous(memory_format=torch.channels_last)
            out.append(F.normalize(model(x).float(), dim=1))
    return len(x_all) / (time.perf_counter() - t), torch.cat(out).numpy()


def naive(model, paths, tf, batch_size, channels_last: bool = False):
    "Images per second of the plain loop: open, transform, batch, forward, one process."
    t = time.perf_counter(); out = []
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    with (torch.inference_mode() if channels_last else torch.no_grad()):
        for s in range(0, len(paths), batch_size):
            x = torch.stack([tf(Image.open(p).convert('RGB')) for p in paths[s:s + batch_size]])
            out.append(F.normalize(model(x.contiguous(memory_format=fmt)).float(), dim=1))
    return len(paths) / (time.perf_counter() - t), torch.cat(out).numpy()


@call_parse
def main(rounds: int = 2,          # interleaved rounds; the best of them is reported
         batch_size: int = 64,     # images per forward pass
         num_workers: int = None,  # extraction DataLoader workers (default: automatic)
         limit: int = None,        # only the first N test images (smoke runs)
         no_bf16: store_true = False,  # skip the bf16 autocast rounds (by default run where the CPU has native bf16)
        ):
    "Extraction throughput (model only, end to end, naive loop) on the Grocery test photos; last line JSON."
    bf16 = cpu_has_bf16() and not no_bf16
    root = shared_data('grocery')
    if root is None:
        print(json.dumps({'skipped': 'grocery data not found'})); return
    df = read_grocery(root, splits=('test',))
    if limit: df = df.iloc[:limit].reset_index(drop=True)
    paths = df.path.tolist()
    model = create_backbone(OFFLINE_ARCH, 'offline').to(memory_format=torch.channels_last)
    plain = create_backbone(OFFLINE_ARCH, 'offline').eval()      # the naive loop's model, as created
    dc = get_data_config(model, 224)
    tf = make_transform(dc)
    print(f'{len(df)} images, {OFFLINE_ARCH} offline weights, 224 px, batch {batch_size}, '
          f'{os.cpu_count()} cores, torch threads {torch.get_num_threads()}', flush=True)
    t = time.perf_counter()
    dl = torch.utils.data.DataLoader(ImageDataset(paths, tf), batch_size=batch_size, num_workers=os.cpu_count() or 1)
    x_all = torch.cat([x for x, _, _ in dl])         # the reference timm transform, decoded once, not timed
    print(f'pre-decoded {len(paths)} images in {time.perf_counter() - t:.1f} s', flush=True)
    with torch.inference_mode(): model(x_all[:batch_size].contiguous(memory_format=torch.channels_last))   # warm-up

    res = {'model': [], 'e2e': [], 'naive': [], 'naive_cl': [], 'model_bf16': [], 'e2e_bf16': []}
    emb = ref = None
    for r in range(rounds):
        ips, ref = model_only(model, x_all, batch_size); res['model'].append(ips)
        t = time.perf_counter()
        emb = extract_embeddings(model, df, dc, batch_size=batch_size, num_workers=num_workers, progress=False, amp='off')
        res['e2e'].append(len(df) / (time.perf_counter() - t))
        if bf16:
            ips, _ = model_only(model, x_all, batch_size, torch.bfloat16); res['model_bf16'].append(ips)
            t = time.perf_counter()
            emb16 = extract_embeddings(model, df, dc, batch_size=batch_size, num_workers=num_workers, progress=False, amp='bf16')
            res['e2e_bf16'].append(len(df) / (time.perf_counter() - t))
        ips, nv = naive(plain, paths, tf, batch_size); res['naive'].append(ips)
        ips, _ = naive(model, paths, tf, batch_size, channels_last=True); res['naive_cl'].append(ips)
        print(f"round {r}: model {res['model'][-1]:.1f}  e2e {res['e2e'][-1]:.1f}  naive {res['naive'][-1]:.1f}  "
              f"naive+channels-last {res['naive_cl'][-1]:.1f}"
              + (f"  model bf16 {res['model_bf16'][-1]:.1f}  e2e bf16 {res['e2e_bf16'][-1]:.1f}" if bf16 else '')
              + f" img/s (load {os.getloadavg()[0]:.1f})", flush=True)
    err, cos = float(np.abs(emb - ref).max()), float((emb * ref).sum(1).min())
    assert float((nv * ref).sum(1).min()) > 0.999, 'the naive loop must compute the same embeddings'
    print(f'e2e vs reference embeddings: max abs difference {err:.2e}, min cosine {cos:.6f}')
    assert cos > 0.999, 'the pipeline must compute the same embeddings as the reference transform'
    m = evaluate(emb, df.class_id.to_numpy())
    best = {k: max(v) for k, v in res.items() if v}
    out = {'model_ips': round(best['model'], 1), 'e2e_ips': round(best['e2e'], 1), 'naive_ips': round(best['naive'], 1),
           'r1': round(m['R@1'], 4), 'naive_cl_ips': round(best['naive_cl'], 1), 'mapr': round(m['MAP@R'], 4),
           'cpu_bf16': cpu_has_bf16(), 'auto_amp': str(amp_dtype('auto', 'cpu')).replace('torch.', '')}
    print(f"e2e / model = {best['e2e'] / best['model']:.3f} (target >= 0.85), e2e / naive = "
          f"{best['e2e'] / best['naive']:.2f} (target >= 1.3), R@1 = {m['R@1']:.4f} (target >= 0.90)")
    if bf16:
        m16 = evaluate(emb16, df.class_id.to_numpy())
        out.update(model_bf16_ips=round(best['model_bf16'], 1), e2e_bf16_ips=round(best['e2e_bf16'], 1),
                   r1_bf16=round(m16['R@1'], 4), mapr_bf16=round(m16['MAP@R'], 4))
        print(f"bf16: e2e {best['e2e_bf16'] / best['e2e']:.2f} x fp32 (target >= 1.4), model only "
              f"{best['model_bf16'] / best['model']:.2f} x; R@1 {m16['R@1']:.4f} vs {m['R@1']:.4f}, MAP@R {m16['MAP@R']:.4f} vs "
              f"{m['MAP@R']:.4f} (targets: within 0.005); amp='auto' here: {out['auto_amp']}")
    print(json.dumps(out))

