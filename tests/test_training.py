"""Training under process death and under torchrun (subprocesses; tiny model on the synthetic SOP-format catalog)."""
import os, sys, json, random, shutil, signal, subprocess, time
from pathlib import Path
import pytest
import torch
from conftest import command

ENV = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', PYTHONUNBUFFERED='1')
TINY = ['--backbone', 'resnet10t', '--weights', 'random', '--img_size', '32', '--batch_size', '16', '--k', '4',
        '--lr_backbone', '1e-3', '--seed', '3', '--quiet']


@pytest.fixture(scope='module')
def catalog(tmp_path_factory):
    from simsop.data import make_synthetic_sop
    return make_synthetic_sop(tmp_path_factory.mktemp('sop') / 'sop', n_products=32, seed=0, size=48)


def _cmd(data, out, *extra):
    return [command('simsop_train'), '--data', str(data), '--out', str(out), *TINY, *extra]


def _run(cmd, timeout=180):
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f'{" ".join(cmd)} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}'
    return r, json.loads(r.stdout.strip().splitlines()[-1])


def _ckpt(path):
    return torch.load(path, map_location='cpu', weights_only=True)


def _max_diff(a, b):
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a if a[k].is_floating_point())


def test_kill_and_resume_matches_uninterrupted(catalog, tmp_path):
    "SIGKILL at random moments (one anywhere, one after a checkpoint exists); the resumed run ends with the same weights."
    extra = ['--epochs', '2', '--ckpt_every', '2', '--amp', 'bf16']
    t0 = time.time()
    _, ref = _run(_cmd(catalog, tmp_path / 'ref', *extra))
    t_ref = time.time() - t0
    assert ref['step'] >= 8, ref
    out, rng = tmp_path / 'killed', random.Random(os.getpid())
    kills = []
    for attempt in range(2):
        p = subprocess.Popen(_cmd(catalog, out, *extra), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if attempt == 0: time.sleep(rng.uniform(0.2, 0.9) * t_ref)      # anywhere, start-up included
        else:
            while not (out / 'last.pt').exists() and p.poll() is None: time.sleep(0.05)
            time.sleep(rng.uniform(0, 0.3) * t_ref)                      # after a checkpoint was written
        if p.poll() is None:
            p.send_signal(signal.SIGKILL); p.wait()
            kills.append(_ckpt(out / 'last.pt')['state']['step'] if (out / 'last.pt').exists() else None)
        else: p.communicate()
    assert kills, 'the run finished before it could be killed; make it longer'
    r, res = _run(_cmd(catalog, out, *extra))
    if any(k is not None for k in kills): assert 'resumed from' in r.stdout + r.stderr, (kills, r.stdout, r.stderr)
    a, b = _ckpt(tmp_path / 'ref' / 'last.pt'), _ckpt(out / 'last.pt')
    assert res['step'] == ref['step']
    assert _max_diff(a['model'], b['model']) <= 1e-6, f'weights differ after resume (killed at steps {kills})'
    assert [h['loss'] for h in a['history']] == pytest.approx([h['loss'] for h in b['history']], abs=1e-6)
    assert a['evals'] == b['evals']
    assert not list(out.glob('.*.tmp'))   # temp files of writes cut short by a kill are cleaned up on resume
    print(f'killed at checkpoint steps {kills}; final step {res["step"]}; identical weights')


def test_torchrun_two_processes_follow_single_process(catalog, tmp_path):
    "torchrun --nproc_per_node 2 (gloo) with the same global batch follows the single-process loss curve (|dloss| <= 1e-4)."
    if shutil.which('torchrun') is None and not (Path(sys.executable).parent / 'torchrun').exists(): pytest.skip('torchrun not found')
    torchrun = shutil.which('torchrun') or str(Path(sys.executable).parent / 'torchrun')
    extra = ['--epochs', '1', '--max_steps', '6', '--amp', 'off']
    _, single = _run(_cmd(catalog, tmp_path / 'single', *extra))
    cmd = [torchrun, '--standalone', '--nproc_per_node', '2', *_cmd(catalog, tmp_path / 'ddp', *extra)]
    _, ddp = _run(cmd, timeout=240)
    a, b = _ckpt(tmp_path / 'single' / 'last.pt'), _ckpt(tmp_path / 'ddp' / 'last.pt')
    la, lb = [h['loss'] for h in a['history']], [h['loss'] for h in b['history']]
    assert len(la) == len(lb) == single['step'] == ddp['step'] >= 4
    assert lb == pytest.approx(la, abs=1e-4), (la, lb)
    assert _max_diff(a['model'], b['model']) <= 1e-4
    assert b['config']['batch_size'] == a['config']['batch_size'] == 16   # the global batch, split 2 x 8 across ranks
