"""Embedding extraction under failure and in parallel: SIGKILL part-way then resume, 2-process torchrun, the CLI,
and cache invalidation when image files change. All on a small synthetic SOP-format catalog, on CPU."""
from __future__ import annotations
import os, sys, time, signal, shutil, subprocess, textwrap
from pathlib import Path
import numpy as np
import pytest
from conftest import command

os.environ.setdefault('HF_HUB_OFFLINE', '1')
from simsop.data import make_synthetic_sop, read_sop
from simsop.backbones import create_backbone, get_data_config, extract_embeddings, ForwardCounter, OFFLINE_ARCH

ROOT = Path(__file__).resolve().parents[1]
SIZE = 64


def _env(**kw) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE='1', PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get('PYTHONPATH', ''))
    env['PATH'] = str(Path(sys.executable).parent) + os.pathsep + env.get('PATH', '')
    env.update({k: str(v) for k, v in kw.items()})
    return env


@pytest.fixture(scope='module')
def catalog(tmp_path_factory):
    root = make_synthetic_sop(tmp_path_factory.mktemp('sop'), n_products=24, seed=1, size=SIZE)
    return root, read_sop(root)


@pytest.fixture(scope='module')
def model():
    return create_backbone(OFFLINE_ARCH, 'offline')


@pytest.fixture(scope='module')
def reference(catalog, model):
    "One uninterrupted single-process run, no cache."
    _, df = catalog
    return extract_embeddings(model, df, get_data_config(model, SIZE), batch_size=8, num_workers=0, progress=False)


def test_reference_shape(catalog, reference):
    _, df = catalog
    assert reference.shape == (len(df), 1280) and reference.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(reference, axis=1), 1, atol=1e-5)


KILL_SCRIPT = textwrap.dedent('''
    import sys, time
    from simsop.data import read_sop
    from simsop.backbones import create_backbone, get_data_config, extract_embeddings, OFFLINE_ARCH
    root, cache = sys.argv[1], sys.argv[2]
    m = create_backbone(OFFLINE_ARCH, 'offline')
    m.register_forward_pre_hook(lambda *a: time.sleep(0.4))     # slow enough to be killed part-way
    extract_embeddings(m, read_sop(root), get_data_config(m, %d), batch_size=8, num_workers=0, chunk_size=16,
                       cache_dir=cache, name='killme', progress=False)
    print('FINISHED')
''' % SIZE)


def test_sigkill_then_resume(catalog, model, reference, tmp_path):
    root, df = catalog
    cache = tmp_path/'cache'
    script = tmp_path/'kill.py'; script.write_text(KILL_SCRIPT)
    p = subprocess.Popen([sys.executable, str(script), str(root), str(cache)], env=_env(OMP_NUM_THREADS=2),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    t0 = time.time()
    while time.time() - t0 < 120:
        if len(list(cache.glob('*/chunk_*.npy'))) >= 2: break
        if p.poll() is not None: break
        time.sleep(0.05)
    assert p.poll() is None, f'worker ended before it could be killed: {p.stdout.read().decode()[-2000:]}'
    os.kill(p.pid, signal.SIGKILL); p.wait()
    assert p.returncode == -signal.SIGKILL
    (d,) = list(cache.iterdir())
    assert not (d/'embeddings.npy').exists()
    done = sorted(d.glob('chunk_*.npy'))
    n_done = sum(np.load(f).shape[0] for f in done)
    assert 0 < n_done < len(df)
    # resume in this process: only the missing chunks are embedded, and the result equals the uninterrupted run
    with ForwardCounter(model) as fc:
        emb = extract_embeddings(model, df, get_data_config(model, SIZE), batch_size=8, num_workers=0, chunk_size=16,
                                 cache_dir=cache, name='killme', progress=False)
    assert fc.n == len(df) - n_done, (fc.n, len(df), n_done)
    np.testing.assert_allclose(emb, reference, atol=1e-5, rtol=0)
    assert (d/'embeddings.npy').exists() and not list(d.glob('chunk_*.npy'))
    with ForwardCounter(model) as fc:
        again = extract_embeddings(model, df, get_data_config(model, SIZE), batch_size=8, chunk_size=16,
                                   cache_dir=cache, name='killme', progress=False)
    assert fc.n == 0 and np.array_equal(again, emb)


TORCHRUN_SCRIPT = textwrap.dedent('''
    import sys, os, numpy as np
    import torch.distributed as dist
    from simsop.data import read_sop
    from simsop.backbones import create_backbone, get_data_config, extract_embeddings, OFFLINE_ARCH
    root, out = sys.argv[1], sys.argv[2]
    m = create_backbone(OFFLINE_ARCH, 'offline')
    df = read_sop(root)
    kw = dict(batch_size=8, num_workers=0, chunk_size=24, progress=False)
    a = extract_embeddings(m, df, get_data_config(m, %d), cache_dir=os.path.join(out, 'cache'), **kw)
    b = extract_embeddings(m, df, get_data_config(m, %d), **kw)      # no cache: shards gathered in memory
    rank = dist.get_rank()
    np.save(os.path.join(out, f'cached_rank{rank}.npy'), a); np.save(os.path.join(out, f'mem_rank{rank}.npy'), b)
    if rank == 0: print('world', dist.get_world_size(), 'rank', rank, a.shape, flush=True)   # one writer: no interleaving
    dist.destroy_process_group()
''' % (SIZE, SIZE))


def test_torchrun_two_processes(catalog, reference, tmp_path):
    root, df = catalog
    script = tmp_path/'tr.py'; script.write_text(TORCHRUN_SCRIPT)
    torchrun = Path(sys.executable).parent/'torchrun'
    cmd = [str(torchrun) if torchrun.exists() else 'torchrun', '--standalone', '--nproc_per_node', '2',
           str(script), str(root), str(tmp_path)]
    r = subprocess.run(cmd, env=_env(OMP_NUM_THREADS=1), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for kind in ('cached', 'mem'):
        for rank in (0, 1):
            e = np.load(tmp_path/f'{kind}_rank{rank}.npy')
            np.testing.assert_allclose(e, reference, atol=1e-5, rtol=0, err_msg=f'{kind} rank {rank}')
    assert 'world 2' in r.stdout
    (d,) = list((tmp_path/'cache').iterdir())
    assert (d/'embeddings.npy').exists() and not list(d.glob('chunk_*.npy'))


def test_cli(catalog, model, tmp_path):
    root, df = catalog
    out = tmp_path/'test_emb.npy'
    args = [str(root), '--split', 'test', '--img_size', str(SIZE), '--out', str(out), '--cache_dir', str(tmp_path/'c'),
            '--quiet']
    r = subprocess.run([command('simsop_extract'), *args], env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stderr.strip() == '' and str(out) in r.stdout     # success: exit 0, the output named on stdout
    import pandas as pd
    rows = pd.read_parquet(out.with_suffix('.parquet'))
    test = df[df.split == 'test'].reset_index(drop=True)
    assert rows.path.tolist() == test.path.tolist()
    e = np.load(out)
    ref = extract_embeddings(model, test, get_data_config(model, SIZE), progress=False)
    np.testing.assert_allclose(e, ref, atol=1e-5, rtol=0)


def test_cache_invalidated_when_an_image_changes(catalog, model, tmp_path):
    root, df = catalog
    src = df.head(12).copy()
    files = tmp_path/'imgs'; files.mkdir()
    src['path'] = [shutil.copy(p, files/Path(p).name) for p in src.path]
    dc = get_data_config(model, SIZE)
    with ForwardCounter(model) as fc: a = extract_embeddings(model, src, dc, cache_dir=tmp_path/'c', progress=False)
    assert fc.n == 12
    with ForwardCounter(model) as fc: extract_embeddings(model, src, dc, cache_dir=tmp_path/'c', progress=False)
    assert fc.n == 0
    shutil.copy(df.path.iloc[20], src.path.iloc[3])           # same path, other picture
    with ForwardCounter(model) as fc: b = extract_embeddings(model, src, dc, cache_dir=tmp_path/'c', progress=False)
    assert fc.n == 12
    assert not np.allclose(a[3], b[3]) and np.allclose(np.delete(a, 3, 0), np.delete(b, 3, 0), atol=1e-5)


def test_hub_unreachable_fails_fast_and_clearly(tmp_path):
    "Without HF_HUB_OFFLINE and with the hub unreachable, asking for hub weights fails quickly, saying what to do."
    code = ('from simsop.backbones import create_backbone\n'
            'try: create_backbone("convnext_base", "hub")\n'
            'except Exception as e: print(type(e).__name__, e)\n'
            'else: print("LOADED")\n')
    env = _env(HF_ENDPOINT='https://hub.invalid', HF_HOME=str(tmp_path/'hf'), TORCH_HOME=str(tmp_path/'torch'))
    env.pop('HF_HUB_OFFLINE')
    t = time.time()
    r = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert time.time() - t < 60
    out = r.stdout
    assert out.startswith('WeightsError') and 'unreachable' in out, out
    assert "weights='offline'" in out and '.safetensors' in out, out
