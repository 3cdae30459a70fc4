#!/usr/bin/env python
"""simsop_serve under load: the Grocery train photos (2,640) as the catalog, the Grocery test photos as queries.

Builds (or reuses) the index of the Grocery train split with the offline tf_efficientnet_lite0 at `--img_size`,
measures in this process, before the server starts:

* `model_only_ips`: the model alone on in-memory tensors, as `bench/extract.py` and `extract_embeddings` run it
  (channels-last, fp32, inference mode, batches of `--batch_size`, 64 by default): the extraction throughput the
  service's batching is measured against; `model_only_by_batch` gives it for batches of 1-64 too, and
  `model_only_best_ips` / `qps_over_best` compare with the best of them (on 2 cores, small batches are fastest);
* `forward1_ms`: one image's forward pass (batch of 1, median of 40), measured before and after the load and averaged
  (the speed of this virtual machine drifts by a third over minutes);

then starts `simsop_serve` on loopback in its own process, runs `--clients` concurrent clients (threads with
keep-alive connections, each posting one test photo per request, k=5) for `--seconds`, stops the server, and prints
one JSON line: clients, requests, errors, p50_ms, p99_ms, qps, model_only_ips (plus forward1_ms, the forward passes'
mean batch size, and the ratios the acceptance asks for).

    python bench/serve.py --clients 8 [--seconds 30]
    python bench/serve.py --clients 1
"""
from __future__ import annotations
import os, json, time, socket, signal, secrets, threading, subprocess, http.client, sys
from pathlib import Path
from fastcore.script import call_parse
import numpy as np, torch
from simsop.core import Config, shared_data
from simsop.data import read_grocery, split_rows
from simsop.search import Searcher, index_catalog, model_parts


def one_forward_ms(bb, img_size: int, n: int = 40) -> float:
    "Median milliseconds of one image's forward pass."
    x = torch.randn(1, 3, img_size, img_size).contiguous(memory_format=torch.channels_last); ts = []
    with torch.inference_mode():
        bb(x)
        for _ in range(n): t = time.perf_counter(); bb(x); ts.append(time.perf_counter() - t)
    return 1000 * float(np.median(ts))


def model_speed(bb, img_size: int, batch_sizes=(1, 8, 16, 32, 64), seconds: float = 4) -> dict:
    "`{batch size: images per second}` of the catalog's model alone on in-memory tensors."
    ips = {}
    with torch.inference_mode():
        for bs in batch_sizes:
            x = torch.randn(bs, 3, img_size, img_size).contiguous(memory_format=torch.channels_last)
            bb(x); t = time.perf_counter(); n = 0
            while time.perf_counter() - t < seconds: bb(x); n += bs
            ips[bs] = round(n / (time.perf_counter() - t), 1)
    return ips


def multipart(name: str, data: bytes, k: int) -> tuple[bytes, str]:
    b = 'simsop' + secrets.token_hex(8)
    body = (f'--{b}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\nContent-Type: image/jpeg\r\n\r\n'.encode()
            + data + f'\r\n--{b}\r\nContent-Disposition: form-data; name="k"\r\n\r\n{k}\r\n--{b}--\r\n'.encode())
    return body, f'multipart/form-data; boundary={b}'


def client(port: int, bodies: list, deadline: float, lat: list, errs: list, offset: int):
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=60); i = offset
    while time.perf_counter() < deadline:
        body, ctype = bodies[i % len(bodies)]; i += 1
        t = time.perf_counter()
        try:
            conn.request('POST', '/search', body=body, headers={'Content-Type': ctype}); r = conn.getresponse(); r.read()
            ok = r.status == 200
        except (OSError, http.client.HTTPException) as e:
            ok = False; conn.close(); conn = http.client.HTTPConnection('127.0.0.1', port, timeout=60)
        (lat if ok else errs).append(time.perf_counter() - t)
    conn.close()


def start_server(folder: Path, max_batch: int, max_wait_ms: float) -> tuple[subprocess.Popen, int]:
    s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()
    exe = Path(sys.executable).parent/'simsop_serve'
    p = subprocess.Popen([str(exe), '--catalog', str(folder), '--port', str(port), '--max_batch', str(max_batch),
                          '--max_wait_ms', str(max_wait_ms), '--quiet'], start_new_session=True)
    for _ in range(600):
        if p.poll() is not None: raise SystemExit(f'simsop_serve exited with {p.returncode}')
        try:
            c = http.client.HTTPConnection('127.0.0.1', port, timeout=2); c.request('GET', '/healthz')
            if c.getresponse().status == 200: return p, port
        except OSError: time.sleep(0.2)
    raise SystemExit('simsop_serve did not start within 120 s')


@call_parse
def main(clients: int = 8,          # concurrent clients
         seconds: float = 30,       # how long the clients send requests
         img_size: int = 224,       # model input size
         batch_size: int = 64,      # batch size of the model-only extraction figure (as bench/extract.py)
         max_batch: int = 32,       # the server's --max_batch (views per forward pass)
         max_wait_ms: float = 10,   # the server's --max_wait_ms
         k: int = 5,                # results per query
         data: str = None,          # Grocery Store Dataset folder (default: ../shared/data/grocery)
        ):
    "Throughput and latency of simsop_serve with N clients; last line JSON."
    root = Path(data) if data else shared_data('grocery')
    if root is None: raise SystemExit('needs the Grocery Store Dataset (../shared/data/grocery or --data)')
    cfg = Config(img_size=img_size, device='cpu')
    folder = cfg.artifacts/'indexes'/f'bench-serve-grocery-train-{img_size}'
    if not (folder/'searcher.json').exists(): index_catalog(root, folder, split='train', cfg=cfg)
    bb = model_parts(Searcher.load(folder).model)[0].eval().to(memory_format=torch.channels_last)
    by_batch = model_speed(bb, img_size, sorted({1, 8, 16, 32, batch_size}))
    model_ips, best_ips = by_batch[batch_size], max(by_batch.values())
    fw_before = one_forward_ms(bb, img_size)
    test = split_rows(read_grocery(root), 'test')
    bodies = [multipart(Path(p).name, Path(p).read_bytes(), k) for p in test['path'].iloc[::7]]   # 355 photos, all products
    srv, port = start_server(folder, max_batch, max_wait_ms)
    try:
        client(port, bodies[:1], time.perf_counter() + 2, [], [], 0)         # warm-up
        lat, errs, deadline = [], [], time.perf_counter() + seconds
        threads = [threading.Thread(target=client, args=(port, bodies, deadline, lat, errs, i * 37)) for i in range(clients)]
        t0 = time.perf_counter()
        for t in threads: t.start()
        for t in threads: t.join()
        wall = time.perf_counter() - t0
    finally:
        os.killpg(srv.pid, signal.SIGTERM); srv.wait(30)
    fw_after = one_forward_ms(bb, img_size); forward1_ms = (fw_before + fw_after) / 2   # the machine's speed drifts
    ms = 1000 * np.array(lat)
    out = dict(clients=clients, requests=len(lat) + len(errs), errors=len(errs), p50_ms=round(float(np.percentile(ms, 50)), 1),
               p99_ms=round(float(np.percentile(ms, 99)), 1), qps=round(len(lat) / wall, 1), model_only_ips=round(model_ips, 1),
               forward1_ms=round(forward1_ms, 1), forward1_before_after_ms=[round(fw_before, 1), round(fw_after, 1)], qps_over_model=round(len(lat) / wall / model_ips, 3),
               model_only_best_ips=best_ips, qps_over_best=round(len(lat) / wall / best_ips, 3), model_only_by_batch=by_batch,
               p50_over_forward1=round(float(np.percentile(ms, 50)) / forward1_ms, 2), img_size=img_size, seconds=seconds,
               catalog=int(json.loads((folder/'searcher.json').read_text())['n']))
    print(json.dumps(out), flush=True)
