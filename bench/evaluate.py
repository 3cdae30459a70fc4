"""Evaluation benchmark: our exact chunked metrics vs pytorch-metric-learning's AccuracyCalculator at SOP size.

Synthetic SOP-sized embeddings (60,502 x 256, L2-normalised, products of 2-12 images like SOP, noise chosen so that
Recall@1 is about 0.7), evaluated within the split (leave-one-out) by
  * ours:  simsop.retrieval.evaluate: R@1/5/10/100, P@1/5/10, R-Precision, MAP@R (its default: bf16 screening where
           the CPU computes bf16 natively), and the same in float32 only (`ours_fp32_s`; the metrics must be identical)
  * FAISS: one exact IndexFlatIP search with k = 11 (the floor for R@10 by a plain search; no metrics)
  * PML:   AccuracyCalculator(k="max_bin_count") precision_at_1, r_precision, mean_average_precision_at_r
each in its own process, so that peak memory (VmHWM of that process, the data loading and imports included) is
measured separately. Only the metric call itself is timed (wall and CPU seconds: on a shared machine the CPU time
is the steadier comparison). Last line: one JSON object
{"ours_s", "pml_s", "faiss_k11_s", "ours_over_faiss", "ours_over_pml", "ours_peak_gb", "pml_peak_gb", "max_abs_diff", ...}.

    python bench/evaluate.py [--n 60502] [--d 256] [--noise 1.62]
Run by hand (about a minute), not in CI.
"""
import json, os, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np
from fastcore.script import call_parse

def rss_gb(field: str = 'VmRSS') -> float:
    """This process's resident memory in GiB (/proc/self/status): 'VmRSS' now, 'VmHWM' its peak. Unlike ru_maxrss, the
    peak is not inherited: a child started by subprocess reports at least its parent's resident size in ru_maxrss."""
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith(field + ':'): return int(line.split()[1]) / 1024 ** 2
    return float('nan')

def _child(kind, emb_path, lab_path):
    x = np.load(emb_path); y = np.load(lab_path)
    if kind.startswith('ours'):                # 'ours': the default (bf16 screening where the CPU has it); 'ours_fp32': float32 only
        from simsop.retrieval import evaluate
        fn = lambda: evaluate(x, y, ks=(1, 5, 10, 100), precision_ks=(1, 5, 10), screen='off' if kind == 'ours_fp32' else 'auto')
    elif kind == 'faiss':                      # the floor: one exact FAISS search, k = 11 (the query itself + 10)
        import faiss
        index = faiss.IndexFlatIP(x.shape[1]); index.add(x)
        fn = lambda: (index.search(x, 11), {})[1]
    else:
        from simsop.retrieval import pml_metrics
        fn = lambda: pml_metrics(x, y)
    c0, t0 = time.process_time(), time.perf_counter()
    r = fn()
    t, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = rss_gb('VmHWM')
    print(json.dumps(dict(seconds=t, cpu_seconds=cpu, peak_gb=peak, metrics=r)))

def run(kind, emb, lab):
    out = subprocess.run([sys.executable, __file__, '--child', kind, '--emb', emb, '--lab', lab],
                         capture_output=True, text=True)
    if out.returncode: raise RuntimeError(f'{kind} failed:\n{out.stderr[-3000:]}')
    return json.loads(out.stdout.strip().splitlines()[-1])

@call_parse
def main(n: int = 60502, d: int = 256, noise: float = 1.62, seed: int = 0,
         child: str = '', emb: str = '', lab: str = ''):
    if child: return _child(child, emb, lab)
    from simsop.retrieval import synthetic_embeddings
    from simsop.core import cpu_has_bf16
    x, y, _ = synthetic_embeddings(n, d, noise=noise, seed=seed)
    sizes = np.bincount(y)
    with tempfile.TemporaryDirectory() as tmp:
        ep, lp = str(Path(tmp)/'emb.npy'), str(Path(tmp)/'lab.npy')
        np.save(ep, x); np.save(lp, y); del x
        ours = run('ours', ep, lp); print('ours', json.dumps(ours), file=sys.stderr, flush=True)
        o32 = run('ours_fp32', ep, lp); print('ours_fp32', json.dumps(o32), file=sys.stderr, flush=True)
        fk = run('faiss', ep, lp); print('faiss', json.dumps(fk), file=sys.stderr, flush=True)
        pml = run('pml', ep, lp); print('pml ', json.dumps(pml), file=sys.stderr, flush=True)
    diff = max(abs(ours['metrics'][k] - pml['metrics'][k]) for k in pml['metrics'])
    if o32['metrics'] != ours['metrics']: raise AssertionError(f"screened and float32 metrics differ: {ours['metrics']} {o32['metrics']}")
    print(f"ours / FAISS k=11 = {ours['seconds'] / fk['seconds']:.2f} (target <= 0.8), ours / PML = "
          f"{ours['seconds'] / pml['seconds']:.2f} (target <= 0.25), ours peak {ours['peak_gb']:.2f} GB (target <= 1), "
          f"max |ours - PML| = {diff:.1e} (target <= 1e-6)", file=sys.stderr)
    print(json.dumps(dict(ours_s=round(ours['seconds'], 2), pml_s=round(pml['seconds'], 2), faiss_k11_s=round(fk['seconds'], 2),
                          ours_over_faiss=round(ours['seconds'] / fk['seconds'], 3), ours_over_pml=round(ours['seconds'] / pml['seconds'], 3),
                          ours_peak_gb=round(ours['peak_gb'], 3), pml_peak_gb=round(pml['peak_gb'], 3),
                          max_abs_diff=float(diff), ours_fp32_s=round(o32['seconds'], 2), bf16=cpu_has_bf16(),
                          ours_cpu_s=round(ours['cpu_seconds'], 1),
                          pml_cpu_s=round(pml['cpu_seconds'], 1), n=n, dim=d, products=int(len(sizes)),
                          product_sizes=[int(sizes.min()), int(sizes.max())], ours=ours['metrics'],
                          load=os.getloadavg()[0])))
