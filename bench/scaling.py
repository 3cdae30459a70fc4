#!/usr/bin/env python
"""Cost as the work grows: exact evaluation against N, and the catalog index against catalog size.

Part 1, evaluation (`--eval_ns`, default 10k, 30k, 60k, 120k): SOP-like synthetic embeddings (256-d, products of
2-12 images, `bench/evaluate.py`'s data), evaluated within the split by ours (`simsop.retrieval.evaluate`, R@1/5/10/100,
P@K, R-Precision, MAP@R) and by pytorch-metric-learning's `AccuracyCalculator`, each in its own process: wall seconds
and peak memory (VmHWM, imports included). PML runs only while its peak, extrapolated as N^2 from the previous
size, fits in 80% of the available memory.

Part 2, the catalog index (`--index_ns`, default 100k, 1M, 10M): catalogs of 256-d vectors structured like product
embeddings (12 super-classes; families of 8 look-alike products, cosine ~0.6 between them; 4 views per product,
cosine ~0.8 between views), generated in chunks so that ten million never sit in memory as float32. For each size, in
its own process: the index `simsop_index` builds for that size (`simsop.retrieval.auto_factory`), trained on 200k
vectors, filled chunk by chunk, and tuned (`Index.tune`) on 500 held-out queries (new views of other products); then,
on 1,000 other held-out queries: recall@10 against exact search (the exact top 10 streamed over the chunks), p50/p99
latency of a single query and of a batch of 64, build seconds, the saved files' size and the resident memory (VmRSS)
of a fresh process that loads the index with `Index.load` and searches it.

    python bench/scaling.py [--eval_ns 10000,30000,60000,120000] [--index_ns 100000,1000000,10000000]
    python bench/scaling.py --index_ns ''      # evaluation only; the index part of --out is kept
The table goes to stdout and `--out` (JSON, default bench/results/scaling_cpu_2cores.json), which the retrieval
notebook plots. About 30 minutes on 2 cores; run by hand, not in CI.
"""
import json, os, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np
from fastcore.script import call_parse

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import evaluate as evalbench                       # bench/evaluate.py: the same children (ours, PML), the same data
from evaluate import rss_gb

D, VIEWS, FAMILY, CHUNK_PRODUCTS = 256, 4, 8, 65_536

def _unit(v): return v / np.linalg.norm(v, axis=1, keepdims=True)

def _noise(rng, n, scale): return (scale / np.sqrt(D)) * rng.standard_normal((n, D), dtype=np.float32)

def products(c: int, n_products: int, seed: int = 0) -> np.ndarray:
    "Unit centres of the products of chunk `c` (`CHUNK_PRODUCTS` each): look-alike families inside super-classes."
    sup = _unit(np.random.default_rng(seed).standard_normal((12, D), dtype=np.float32))
    rng = np.random.default_rng([seed, c])
    p = min(CHUNK_PRODUCTS, n_products - c * CHUNK_PRODUCTS); nf = -(-p // FAMILY)
    fam = _unit(0.6 * sup[rng.integers(0, 12, nf)] + _noise(rng, nf, 1.0))
    return _unit(np.repeat(fam, FAMILY, 0)[:p] + _noise(rng, p, 0.8))

def chunk(c: int, n_products: int, seed: int = 0) -> np.ndarray:
    "The catalog vectors of chunk `c`: `VIEWS` views of each of its products, product after product."
    cen = products(c, n_products, seed)
    return _unit(np.repeat(cen, VIEWS, 0) + _noise(np.random.default_rng([seed, c, 1]), len(cen) * VIEWS, 0.5))

def queries(product_ids, n_products: int, seed: int = 0, stream: int = 2) -> np.ndarray:
    "New views (not in the catalog) of the products `product_ids`."
    out = np.empty((len(product_ids), D), np.float32); product_ids = np.asarray(product_ids)
    for c in np.unique(product_ids // CHUNK_PRODUCTS):
        m = product_ids // CHUNK_PRODUCTS == c
        cen = products(int(c), n_products, seed)[product_ids[m] % CHUNK_PRODUCTS]
        out[m] = _unit(cen + _noise(np.random.default_rng([seed, int(c), stream]), len(cen), 0.5))
    return out

def latencies_ms(index, q, batch: int):
    "Wall milliseconds of each search of `batch` queries at a time, top 10."
    t = []
    for s in range(0, len(q) - batch + 1, batch):
        t0 = time.perf_counter(); index.search(q[s:s + batch], 10); t.append((time.perf_counter() - t0) * 1e3)
    return np.array(t)

def index_child(n: int, seed: int, out: str):
    "Build, tune and measure the auto index for a catalog of `n` vectors; save it into `out`; print one JSON line."
    from simsop.retrieval import Index, auto_factory, knn, recall_at_k
    n_products = n // VIEWS; n = n_products * VIEWS
    n_chunks = -(-n_products // CHUNK_PRODUCTS)
    rng = np.random.default_rng([seed, 99])
    picked = rng.choice(n_products, 1500, replace=False)
    q_test, q_tune = queries(picked[:1000], n_products, seed), queries(picked[1000:], n_products, seed, stream=3)
    qs = np.concatenate([q_test, q_tune])
    factory = auto_factory(n, D)
    index = Index(D, factory, model='synthetic')
    best_s = np.full((len(qs), 10), -np.inf, np.float32); best_i = np.full((len(qs), 10), -1, np.int64)
    t0 = time.perf_counter(); t_truth = 0.0; row = 0
    for c in range(n_chunks):
        x = chunk(c, n_products, seed)
        if c == 0: index.train(x)                              # at most 200k random rows of the first chunk
        index.add(x)
        t1 = time.perf_counter()                               # the exact top 10, merged chunk by chunk (not build time)
        s, i = knn(qs, x, 10)
        S, I = np.concatenate([best_s, s], 1), np.concatenate([best_i, i + row], 1)
        o = np.argsort(-S, axis=1, kind='stable')[:, :10]
        best_s, best_i = np.take_along_axis(S, o, 1), np.take_along_axis(I, o, 1)
        t_truth += time.perf_counter() - t1; row += len(x)
        print(f'  {n:,}: chunk {c + 1}/{n_chunks} ({row:,} vectors, {time.perf_counter() - t0:.0f} s)', file=sys.stderr, flush=True)
    del x
    truth_test, truth_tune = best_i[:1000], best_i[1000:]
    index.tune(q_tune, truth_tune)
    build_s = time.perf_counter() - t0 - t_truth
    recall = recall_at_k(index.search(q_test, 10)[1], truth_test)
    path = index.save(Path(out)/'index.faiss')
    files_gb = sum(f.stat().st_size for f in Path(out).iterdir()) / 1024 ** 3
    np.save(Path(out)/'q_test.npy', q_test)
    print(json.dumps(dict(n=n, factory=factory, params=index.params, tuning=getattr(index, 'tuning', None),
                          build_s=round(build_s, 1), truth_s=round(t_truth, 1), recall_at_10=round(recall, 4),
                          build_peak_gb=round(rss_gb('VmHWM'), 2),
                          files_gb=round(files_gb, 3))), flush=True)

def serve_child(out: str):
    "Load the saved index in a fresh process, as a service would, and measure its memory and latency; one JSON line."
    import faiss
    from simsop.retrieval import Index
    base = rss_gb()
    t0 = time.perf_counter(); index = Index.load(Path(out)/'index.faiss'); load_s = time.perf_counter() - t0
    q = np.load(Path(out)/'q_test.npy')
    index.search(q[:64], 10)                                  # warm-up
    one, b64 = latencies_ms(index, q, 1), latencies_ms(index, np.concatenate([q, q]), 64)
    print(json.dumps(dict(load_s=round(load_s, 1), rss_gb=round(rss_gb(), 3), rss_before_load_gb=round(base, 3),
                          p50_ms=round(float(np.percentile(one, 50)), 3), p99_ms=round(float(np.percentile(one, 99)), 3),
                          p50_b64_ms=round(float(np.percentile(b64, 50)), 2), p99_b64_ms=round(float(np.percentile(b64, 99)), 2),
                          threads=faiss.omp_get_max_threads())), flush=True)

def _child(args):
    out = subprocess.run([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True)
    if out.returncode: raise RuntimeError(f'{args} failed (status {out.returncode})')
    return json.loads(out.stdout.strip().splitlines()[-1])

def mem_available_gb() -> float:
    for line in Path('/proc/meminfo').read_text().splitlines():
        if line.startswith('MemAvailable:'): return int(line.split()[1]) / 1024 ** 2
    return float('inf')

def eval_part(ns, seed):
    from simsop.retrieval import synthetic_embeddings
    rows, pml_last = [], None
    for n in ns:
        x, y, _ = synthetic_embeddings(n, D, noise=1.62, seed=seed)
        with tempfile.TemporaryDirectory() as tmp:
            ep, lp = str(Path(tmp)/'emb.npy'), str(Path(tmp)/'lab.npy'); np.save(ep, x); np.save(lp, y)
            ours = evalbench.run('ours', ep, lp)
            r = dict(n=n, ours_s=round(ours['seconds'], 2), ours_peak_gb=round(ours['peak_gb'], 3), pml_s=None, pml_peak_gb=None)
            guess = pml_last[1] * (n / pml_last[0]) ** 2 if pml_last else 0
            if guess < 0.8 * mem_available_gb():
                pml = evalbench.run('pml', ep, lp); pml_last = (n, pml['peak_gb'])
                r.update(pml_s=round(pml['seconds'], 2), pml_peak_gb=round(pml['peak_gb'], 3),
                         max_abs_diff=max(abs(ours['metrics'][k] - pml['metrics'][k]) for k in pml['metrics']))
            else: r['pml_note'] = f'skipped: would need about {guess:.0f} GB (extrapolated), {mem_available_gb():.0f} GB available'
        rows.append(r); print(json.dumps(r), flush=True)
    return rows

def index_part(ns, seed):
    rows = []
    for n in ns:
        with tempfile.TemporaryDirectory() as tmp:
            r = _child(['--child', 'index', '--n', str(n), '--seed', str(seed), '--dir', tmp])
            r.update(_child(['--child', 'serve', '--dir', tmp]))
        rows.append(r); print(json.dumps(r), flush=True)
    return rows

def _ints(s): return [int(float(v)) for v in str(s).split(',') if v]

@call_parse
def main(eval_ns: str = '10000,30000,60000,120000',      # evaluation sizes (comma-separated)
         index_ns: str = '100000,1000000,10000000',      # catalog sizes for the index (comma-separated)
         seed: int = 0,
         out: str = str(HERE/'results'/'scaling_cpu_2cores.json'),   # where the JSON table goes ('' = nowhere)
         child: str = '', n: int = 0, dir: str = ''):
    "Evaluation time and memory against N; index build, memory, recall and latency against catalog size."
    if child == 'index': return index_child(n, seed, dir)
    if child == 'serve': return serve_child(dir)
    t0 = time.time()
    old = json.loads(Path(out).read_text()) if out and Path(out).exists() else {}   # an empty part keeps the old one
    res = dict(cores=os.cpu_count(), evaluation=eval_part(_ints(eval_ns), seed) if eval_ns else old.get('evaluation', []),
               index=index_part(_ints(index_ns), seed) if index_ns else old.get('index', []))
    res['wall_s'] = round(time.time() - t0, 1)
    kept = [part for part, ns in (('evaluation', eval_ns), ('index', index_ns)) if not ns]
    if kept: res['note'] = f"{' and '.join(kept)} kept from the previous {Path(out).name}; wall_s is this run's"
    print('\nevaluation (within the split, exact):')
    for r in res['evaluation']:
        pml = f"PML {r['pml_s']:7.2f} s {r['pml_peak_gb']:6.2f} GB" if r['pml_s'] is not None else f"PML {r['pml_note']}"
        print(f"  N={r['n']:>7,}: ours {r['ours_s']:7.2f} s {r['ours_peak_gb']:5.2f} GB | {pml}")
    print('index (auto choice, tuned on held-out queries):')
    for r in res['index']:
        print(f"  {r['n']:>10,} vectors: {r['factory']} {r['params']} build {r['build_s']:.0f} s, R@10 {r['recall_at_10']:.3f}, "
              f"p50/p99 {r['p50_ms']:.2f}/{r['p99_ms']:.2f} ms (1 query), {r['p50_b64_ms']:.1f}/{r['p99_b64_ms']:.1f} ms "
              f"(64), resident {r['rss_gb']:.2f} GB, files {r['files_gb']:.2f} GB")
    print(f"total {res['wall_s'] / 60:.1f} min")
    if out:
        from simsop.core import write_json
        write_json(out, res)
    print(json.dumps(res))
