"""ANN benchmark: FAISS HNSW / IVF settings on 1,000,000 x 256 clustered synthetic vectors.

For each setting: build seconds (train + add), recall@10 against exact inner-product search, single-query latency
p50/p99 (ms, one thread, one query at a time). Prints one JSON line per setting, and as the LAST line the recommended
setting: the fastest (p50) one reaching recall@10 >= 0.95 and built in under 10 minutes.

    python bench/ann.py [--n 1000000] [--d 256] [--nq 1000]
Run by hand (minutes; 1M x 256 float32 is 1 GB), not in CI.
"""
import json, time, sys
import numpy as np
import faiss
from fastcore.script import call_parse

def clustered(n, d, n_clusters=10_000, spread=0.6, seed=0, chunk=200_000):
    """`n` L2-normalised vectors around `n_clusters` random centres (cluster structure like product embeddings): each is
    its centre plus Gaussian noise of norm ~`spread`, so same-cluster cosine ~ 1/(1+spread^2), others ~ 0 +- 1/sqrt(d)."""
    rng = np.random.default_rng(seed)
    cent = rng.standard_normal((n_clusters, d), dtype=np.float32)
    cent /= np.linalg.norm(cent, axis=1, keepdims=True)
    x = np.empty((n, d), np.float32)
    for i in range(0, n, chunk):
        m = min(chunk, n - i)
        c = rng.integers(0, n_clusters, m)
        v = cent[c] + (spread / np.sqrt(d)) * rng.standard_normal((m, d), dtype=np.float32)
        x[i:i + m] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return x

def latency_ms(index, q, k=10):
    "Per-query wall time (ms) searching one query at a time."
    t = np.empty(len(q))
    for i in range(len(q)):
        t0 = time.perf_counter(); index.search(q[i:i + 1], k); t[i] = time.perf_counter() - t0
    return t * 1e3

def recall_at(I, gt, k=10):
    "Fraction of the exact top-k found in the approximate top-k."
    return float(np.mean([len(set(a[:k]) & set(b[:k])) / k for a, b in zip(I, gt)]))

@call_parse
def main(n: int = 1_000_000, d: int = 256, nq: int = 1000, spread: float = 0.6, threads: int = 0, skip_hnsw: bool = False,
         max_build_s: float = 600, train_size: int = 100_000):
    if threads: faiss.omp_set_num_threads(threads)
    nthreads = faiss.omp_get_max_threads()
    t0 = time.time()
    xb = clustered(n + nq, d, spread=spread)
    xq, xb = xb[:nq].copy(), xb[nq:]
    print(f'data {xb.shape} in {time.time() - t0:.1f}s', file=sys.stderr, flush=True)
    t0 = time.time()
    flat = faiss.IndexFlatIP(d); flat.add(xb)
    _, gt = flat.search(xq, 10); del flat
    print(f'exact ground truth in {time.time() - t0:.1f}s', file=sys.stderr, flush=True)
    settings = [('IVF1024,Flat', {}, [dict(nprobe=p) for p in (4, 8, 16, 32)]),
                ('IVF1024,PQ32', {}, [dict(nprobe=p) for p in (8, 32)])]   # (factory, build params, search params)
    if not skip_hnsw:
        settings.append(('HNSW32', dict(efConstruction=40), [dict(efSearch=e) for e in (16, 32, 64, 128)]))
    rows = []
    for factory, bparams, sparams in settings:
        index = faiss.index_factory(d, factory, faiss.METRIC_INNER_PRODUCT)
        if 'efConstruction' in bparams: index.hnsw.efConstruction = bparams['efConstruction']
        t0 = time.time()
        if not index.is_trained:
            rng = np.random.default_rng(1)
            index.train(xb[rng.choice(n, min(n, train_size), replace=False)])
        for i in range(0, n, 50_000):          # add in chunks so a build past 10 minutes can be abandoned
            index.add(xb[i:i + 50_000])
            if time.time() - t0 > max_build_s and i + 50_000 < n: break
        build_s = time.time() - t0
        if index.ntotal < n:
            r = dict(index=factory, build_s=round(build_s, 1), recall_at_10=None, p50_ms=None, p99_ms=None,
                     note=f'abandoned: only {index.ntotal:,} of {n:,} vectors added in {max_build_s:.0f}s')
            rows.append(r); print(json.dumps(r), flush=True); del index; continue
        print(f'{factory} built in {build_s:.1f}s', file=sys.stderr, flush=True)
        ps = faiss.ParameterSpace()
        for sp in sparams:
            for k_, v in sp.items(): ps.set_index_parameter(index, k_, v)
            faiss.omp_set_num_threads(nthreads)
            _, I = index.search(xq, 10)
            rec = recall_at(I, gt)
            faiss.omp_set_num_threads(1)     # single-query latency: one thread, no OpenMP overhead
            lat = latency_ms(index, xq[:500])
            faiss.omp_set_num_threads(nthreads)
            name = factory + ' ' + ','.join(f'{k_}={v}' for k_, v in sp.items())
            r = dict(index=name, build_s=round(build_s, 1), recall_at_10=round(rec, 4),
                     p50_ms=round(float(np.percentile(lat, 50)), 3), p99_ms=round(float(np.percentile(lat, 99)), 3))
            rows.append(r); print(json.dumps(r), flush=True)
        del index
    done = [r for r in rows if r['recall_at_10'] is not None]
    ok = [r for r in done if r['recall_at_10'] >= 0.95 and r['build_s'] < 600]
    best = min(ok, key=lambda r: r['p50_ms']) if ok else max(done, key=lambda r: r['recall_at_10'])
    print(json.dumps(best))
