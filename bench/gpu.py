#!/usr/bin/env python
"""GPU benchmark (run by `bench/gpu.sh` on a machine with an NVIDIA GPU): ConvNeXt-Base at 224 px, random weights,
bf16 autocast, channels-last.

* `train_ips`: training images per second of backbone + 2-layer MLP head (1024 -> 1024 -> 256) under the SupCon loss,
  AdamW, global batch 128 (P x K = 32 x 4), synthetic inputs (the model's speed, not the data pipeline's);
* `model_ips`: extraction images per second of the backbone alone on tensors already on the GPU;
* `e2e_ips`: `simsop.backbones.extract_embeddings` from JPEG files on disk (decode, resize, crop in DataLoader workers);
* `eval_gpu_s` / `eval_cpu_s`: exact `simsop.retrieval.evaluate` (R@1/5/10/100, R-Precision, MAP@R) of 60,502 x 256
  SOP-like embeddings with the neighbour search on the GPU (`device='cuda'`) and on the CPU, and the largest
  difference between their metrics.

Reference: timm's published table gives about 337 img/s for ConvNeXt-Base mixed-precision training on an RTX 3090.
The last line printed is one JSON object.
"""
import json, os, time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
import numpy as np, torch
from fastcore.script import call_parse
from simsop.backbones import create_backbone, extract_embeddings, get_data_config
from simsop.data import read_folder
from simsop.training import ProjectionHead, EmbeddingModel, param_groups
from simsop.losses import supcon_loss
from simsop.retrieval import evaluate, synthetic_embeddings


def _timed(fn, warm: int, steps: int) -> float:
    "Seconds of `steps` calls of `fn` after `warm` untimed ones (CUDA synchronised)."
    for _ in range(warm): fn()
    torch.cuda.synchronize(); t = time.perf_counter()
    for _ in range(steps): fn()
    torch.cuda.synchronize()
    return time.perf_counter() - t


def train_ips(model, batch: int, steps: int, warm: int) -> float:
    opt = torch.optim.AdamW(param_groups(model, 1e-4, 1e-3, 0.05))
    x = torch.randn(batch, 3, 224, 224, device='cuda').contiguous(memory_format=torch.channels_last)
    y = torch.arange(batch, device='cuda') // 4
    def step():
        with torch.autocast('cuda', dtype=torch.bfloat16): e = model(x)
        loss = supcon_loss(e.float(), y)
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    model.train()
    return batch * steps / _timed(step, warm, steps)


@torch.inference_mode()
def model_ips(backbone, batch: int, steps: int, warm: int) -> float:
    x = torch.randn(batch, 3, 224, 224, device='cuda').contiguous(memory_format=torch.channels_last)
    backbone.eval()
    def fwd():
        with torch.autocast('cuda', dtype=torch.bfloat16): backbone(x)
    return batch * steps / _timed(fwd, warm, steps)


def _jpeg(args):
    from PIL import Image
    path, seed = args
    rng = np.random.default_rng(seed)
    a = (rng.random((8, 8, 3)) * 255).astype(np.uint8)             # smooth colour fields: JPEG-like photos, not noise
    Image.fromarray(a).resize((400, 320), Image.BICUBIC).save(path, quality=90)


def folder_catalog(root: Path, n: int, per: int = 4) -> Path:
    "`root/<super>/<product>/<image>.jpg`: `n` 400x320 JPEGs written by all cores."
    jobs = []
    for i in range(n):
        d = root/'s0'/f'p{i // per:05d}'; d.mkdir(parents=True, exist_ok=True); jobs.append((d/f'{i:06d}.jpg', i))
    with ProcessPoolExecutor(os.cpu_count()) as ex: list(ex.map(_jpeg, jobs, chunksize=64))
    return root


@call_parse
def main(out: str = None,            # folder for the JSON result (default: only printed)
         batch: int = 128,           # training batch (P x K = batch/4 x 4)
         steps: int = 30,            # timed training / extraction steps
         n_images: int = 8192,       # JPEGs for the end-to-end extraction
         n_eval: int = 60502,        # embeddings for the evaluation (SOP's test split size)
        ):
    "ConvNeXt-Base training and extraction throughput and exact evaluation on one GPU; last line JSON."
    assert torch.cuda.is_available(), 'no CUDA device'
    res = dict(gpu=torch.cuda.get_device_name(0), torch=torch.__version__)
    bb = create_backbone('convnext_base', 'random').cuda().to(memory_format=torch.channels_last)
    model = EmbeddingModel(bb, ProjectionHead(bb.num_features, 1024, 256)).cuda()
    res['train_ips'] = round(train_ips(model, batch, steps, warm=5), 1); print(res, flush=True)
    res['model_ips'] = round(model_ips(bb, 256, steps, warm=3), 1); print(res, flush=True)
    root = folder_catalog(Path('/tmp/simsop_gpu_jpegs'), n_images)
    df = read_folder(root)
    dc = get_data_config(bb, 224)
    kw = dict(batch_size=256, num_workers=max(1, (os.cpu_count() or 2) - 2), device='cuda', amp='bf16', progress=False)
    extract_embeddings(bb, df.iloc[:1024], dc, **kw)                                   # warm-up (cudnn, workers)
    t = time.perf_counter(); extract_embeddings(bb, df, dc, **kw); res['e2e_ips'] = round(len(df) / (time.perf_counter() - t), 1)
    res['e2e_images'] = len(df); print(res, flush=True)
    x, y, _ = synthetic_embeddings(n_eval, 256, noise=1.62)
    ev = dict(ks=(1, 5, 10, 100), precision_ks=(1, 5, 10))
    evaluate(x[:2000], y[:2000], device='cuda', **ev)                                   # warm-up
    t = time.perf_counter(); mg = evaluate(x, y, device='cuda', **ev); res['eval_gpu_s'] = round(time.perf_counter() - t, 2)
    t = time.perf_counter(); mc = evaluate(x, y, **ev); res['eval_cpu_s'] = round(time.perf_counter() - t, 2)
    res['eval_max_abs_diff'] = max(abs(mg[k] - mc[k]) for k in mc)
    res.update({f'eval_{k}': round(mg[k], 4) for k in ('R@1', 'R@100', 'MAP@R')}, n_eval=n_eval, cpu_cores=os.cpu_count())
    if out: Path(out).mkdir(parents=True, exist_ok=True); (Path(out)/'gpu.json').write_text(json.dumps(res, indent=1))
    print(json.dumps(res), flush=True)
