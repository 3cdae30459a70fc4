"""Never silently wrong: every bad input gives `error:` lines and exit status 1 (no traceback), artifact sets survive a
kill at any rename as the old set or the new one, a run folder or cache belongs to one process, a run resumes only
with its own settings. Each test runs the installed commands on small generated catalogs (and the shared HEIC files)."""
from __future__ import annotations
import json, os, shutil, signal, subprocess, sys, time
from pathlib import Path
import numpy as np
import pytest
from PIL import Image

from conftest import command
from simsop.core import shared_data

HEIC = shared_data('heic', quiet=True)
TINY = ['--backbone', 'resnet10t', '--weights', 'random', '--img_size', '32', '--batch_size', '8', '--k', '2', '--quiet']


@pytest.fixture(scope='module')
def env(tmp_path_factory):
    e = dict(os.environ, SIMSOP_ARTIFACTS=str(tmp_path_factory.mktemp('artifacts')), SIMSOP_DEVICE='cpu', OMP_NUM_THREADS='1',
             PYTHONWARNINGS='ignore', HF_HUB_OFFLINE='1')
    e.pop('SIMSOP_SCALE', None); e.pop('SIMSOP_FAULT_RENAME', None)
    return e


def run(env, name, *args, timeout=300, **kw):
    return subprocess.run([command(name), *map(str, args)], capture_output=True, text=True, env={**env, **kw}, timeout=timeout)


def clean_error(r, *needles):
    "Exit status 1, only `error:` lines on stderr (no traceback), each needle in them."
    assert r.returncode == 1, (r.returncode, r.stderr[-2000:])
    assert 'Traceback' not in r.stderr, r.stderr[-2000:]
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert lines and all(l.startswith('error: ') for l in lines), r.stderr[-2000:]
    for n in needles: assert n in r.stderr, (n, r.stderr[-2000:])
    return lines


@pytest.fixture(scope='module')
def folder_catalog(tmp_path_factory):
    "`root/<super>/<product>/<image>`: 6 products x 4 views of the synthetic catalog."
    from simsop.data import make_synthetic_sop, read_sop
    tmp = tmp_path_factory.mktemp('cat')
    df = read_sop(make_synthetic_sop(tmp/'sop', n_products=6, seed=3, size=48, per_product=(4, 4)))
    root = tmp/'catalog'
    for r in df.itertuples():
        d = root/r.super_class/f'p{r.class_id:03d}'; d.mkdir(parents=True, exist_ok=True); shutil.copy(r.path, d/Path(r.path).name)
    return root


@pytest.fixture(scope='module')
def bad_catalog(folder_catalog, tmp_path_factory):
    "The folder catalog plus a truncated JPEG, random bytes, an empty file and a text file named .jpg."
    root = tmp_path_factory.mktemp('bad')/'catalog'; shutil.copytree(folder_catalog, root)
    d = sorted(p for p in root.rglob('*') if p.is_dir() and p.parent != root)[0]
    good = next(d.glob('*.JPG'))
    (d/'truncated.jpg').write_bytes(good.read_bytes()[:len(good.read_bytes()) // 3])
    (d/'random.jpg').write_bytes(os.urandom(2000)); (d/'empty.jpg').write_bytes(b''); (d/'notes.jpg').write_text('not an image')
    return root


BAD = ('truncated.jpg', 'random.jpg', 'empty.jpg', 'notes.jpg')


@pytest.mark.parametrize('name, args', [
    ('simsop_extract', ['--img_size', 32]), ('simsop_eval', ['--split', 'catalog', '--img_size', 32, '--quiet']),
    ('simsop_index', ['--img_size', 32, '--quiet']), ('simsop_dedup', ['--img_size', 32, '--quiet']),
    ('simsop_train', ['--mode', 'full', '--max_steps', 1, '--val_frac', 0.34, *TINY])])
def test_unreadable_images_named_or_skipped(env, bad_catalog, tmp_path, name, args):
    "Every unreadable image is named (one error line each) before any work; `--on_error skip` leaves them out and counts them."
    data = ['--data', bad_catalog] if name in ('simsop_eval', 'simsop_index', 'simsop_train') else [bad_catalog]
    out = [] if name == 'simsop_eval' else ['--out', tmp_path/('o.npy' if name == 'simsop_extract' else 'o')]
    r = run(env, name, *data, *out, *args)
    lines = clean_error(r, *BAD)
    assert len([l for l in lines if l.endswith(BAD) or any(b in l for b in BAD)]) >= 4
    if name == 'simsop_dedup': assert not (tmp_path/'o').exists(), 'a failed dedup left an output folder'
    r = run(env, name, *data, *out, *args, '--on_error', 'skip')
    assert r.returncode == 0, r.stderr[-3000:]
    skipped = [l for l in r.stderr.splitlines() if l.startswith('skipped: ')]
    assert sorted(Path(l.split(': ')[1]).name for l in skipped) == sorted(BAD), r.stderr
    if name in ('simsop_eval', 'simsop_train', 'simsop_dedup'): assert json.loads(r.stdout.strip().splitlines()[-1])['n_skipped'] == 4


def _sop(root: Path, train: bytes, test: bytes = b'image_id class_id super_class_id path\n3 2 2 mug_final/b.JPG\n') -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root/'Ebay_train.txt').write_bytes(train); (root/'Ebay_test.txt').write_bytes(test)
    for rel in ('bicycle_final/a.JPG', 'mug_final/b.JPG'):
        (root/rel).parent.mkdir(exist_ok=True); Image.new('RGB', (16, 16), 'red').save(root/rel)
    return root


H = b'image_id class_id super_class_id path\n'


@pytest.mark.parametrize('body, needle', [
    (H + b'1 1 x bicycle_final/a.JPG\n', 'Ebay_train.txt:2: image_id, class_id and super_class_id must be integers'),
    (H + b'1 1 1 bicycle_final/a.JPG\n2 1 1 bicycle_final/caf\xe9.JPG\n', 'Ebay_train.txt:3: not UTF-8 text'),
    (b'image_id class_id\n', 'Ebay_train.txt:1: missing or wrong header'),
    (H + b'1 1 1 bicycle_final/a.JPG extra\n', 'Ebay_train.txt:2: expected 4 space-separated columns')])
def test_malformed_catalog_is_one_line(env, tmp_path, body, needle):
    clean_error(run(env, 'simsop_extract', _sop(tmp_path/'sop', body), '--img_size', 32), needle)


def test_bom_is_fine(env, tmp_path):
    r = run(env, 'simsop_extract', _sop(tmp_path/'sop', b'\xef\xbb\xbf' + H + b'1 1 1 bicycle_final/a.JPG\n'), '--img_size', 32,
            '--out', tmp_path/'e.npy')
    assert r.returncode == 0, r.stderr[-2000:]


def test_debug_shows_the_traceback(env, tmp_path):
    r = run(env, 'simsop_extract', _sop(tmp_path/'sop', b'image_id\n'), '--debug')
    assert r.returncode != 0 and 'Traceback' in r.stderr and 'missing or wrong header' in r.stderr


@pytest.mark.skipif(HEIC is None, reason='shared HEIC photos not found')
def test_heic_catalog_errors_name_each_file(env, tmp_path):
    root = tmp_path/'heic'/'phones'/'p001'; root.mkdir(parents=True)
    for f in ('pug.heic', 'corrupted.heic', 'truncated.heic', 'empty.heic', 'corrupted.hif'): shutil.copy(HEIC/f, root/f)
    clean_error(run(env, 'simsop_extract', tmp_path/'heic', '--img_size', 32), 'corrupted.heic', 'truncated.heic', 'empty.heic', 'corrupted.hif')


def _kill_at_every_rename(env, name, args, before, check):
    """Run `name` killed just before its 1st, 2nd, ... rename until it finishes, each time from a fresh copy of the old
    state and with empty caches (so every run makes the same renames in the same order)."""
    n = 0
    while True:
        n += 1; assert n < 60, 'too many renames'
        state = before(); art = state.parent/'art'; shutil.rmtree(art, ignore_errors=True)
        r = run(env, name, *args(state), SIMSOP_FAULT_RENAME=str(n), SIMSOP_ARTIFACTS=str(art))
        if r.returncode == 0: return n - 1
        assert r.returncode == -signal.SIGKILL, (n, r.returncode, r.stderr[-2000:])
        check(state, n)


def test_extract_killed_at_every_rename_leaves_old_or_new(env, folder_catalog, tmp_path):
    "OUT.npy + OUT.parquet after a kill at any rename: load_embeddings gives the old pair or the new one, never a mix."
    from simsop.backbones import load_embeddings
    old = tmp_path/'old'; old.mkdir()
    r = run(env, 'simsop_extract', folder_catalog, '--img_size', 32, '--out', old/'e.npy', '--cache_dir', tmp_path/'c0')
    assert r.returncode == 0, r.stderr
    sop = folder_catalog.parent/'sop'                                            # another catalog, same size: a mix would not show
    e_old, rows_old = load_embeddings(old/'e.npy')
    def before():
        d = tmp_path/f'run'; shutil.rmtree(d, ignore_errors=True); shutil.copytree(old, d); return d
    def check(d, n):
        e, rows = load_embeddings(d/'e.npy')
        assert (len(rows) == len(e)) and (rows.path.tolist() == rows_old.path.tolist() or rows.path.str.contains('/sop/').all()), n
        if rows.path.tolist() == rows_old.path.tolist(): np.testing.assert_array_equal(e, e_old)
    renames = _kill_at_every_rename(env, 'simsop_extract', lambda d: [sop, '--img_size', 32, '--out', d/'e.npy', '--cache_dir', d.parent/'art'/'c'],
                                    before, check)
    assert renames >= 3, renames                                                   # chunks, cache, journal, the two files


def test_index_killed_at_every_rename_leaves_old_or_new(env, folder_catalog, tmp_path):
    "An index folder after a kill at any rename loads as the old set or the new one (query results match one of them)."
    from simsop.search import Searcher
    old = tmp_path/'old'
    r = run(env, 'simsop_index', '--data', folder_catalog, '--img_size', 32, '--out', old, '--quiet')
    assert r.returncode == 0, r.stderr
    ids_old = Searcher.load(old).catalog['image_id'].tolist()
    def before():
        d = tmp_path/'run'; shutil.rmtree(d, ignore_errors=True); shutil.copytree(old, d); return d
    def check(d, n):
        s = Searcher.load(d)                                                   # refuses a mixed set; else one of the two
        assert s.catalog['image_id'].tolist() == ids_old or s.catalog['path'].str.contains('/sop/').all(), n
        assert len(s.catalog) == len(s.index)
    sop = folder_catalog.parent/'sop'
    renames = _kill_at_every_rename(env, 'simsop_index', lambda d: ['--data', sop, '--split', 'test', '--img_size', 32, '--out', d, '--quiet'],
                                    before, check)
    assert renames >= 5, renames


def test_damaged_searcher_json_named(env, folder_catalog, tmp_path):
    r = run(env, 'simsop_index', '--data', folder_catalog, '--img_size', 32, '--out', tmp_path/'ix', '--quiet')
    assert r.returncode == 0, r.stderr
    img = next(folder_catalog.rglob('*.JPG'))
    m = tmp_path/'ix'/'searcher.json'; info = json.loads(m.read_text())
    m.write_text(json.dumps({k: v for k, v in info.items() if k != 'data_config'}))
    clean_error(run(env, 'simsop_query', img, '--catalog', tmp_path/'ix'), 'searcher.json: has no data_config')
    m.write_text('{"model": ')
    clean_error(run(env, 'simsop_query', img, '--catalog', tmp_path/'ix'), 'searcher.json: not valid JSON')


def test_resume_with_other_settings_refused(env, folder_catalog, tmp_path):
    args = ['--data', folder_catalog, '--out', tmp_path/'run', '--max_steps', 2, '--val_frac', 0.34, *TINY]
    assert run(env, 'simsop_train', *args).returncode == 0
    clean_error(run(env, 'simsop_train', *args, '--seed', 7, '--lr_head', 0.5), 'other settings', 'seed 42 -> 7', 'lr_head 0.0003 -> 0.5')
    clean_error(run(env, 'simsop_train', *args[:-len(TINY) - 2], '--val_frac', 0.2, *TINY), 'other settings', 'val_frac 0.34 -> 0.2')
    r = run(env, 'simsop_train', *args, '--seed', 7, '--no_resume')
    assert r.returncode == 0, r.stderr[-2000:]


def test_two_trainings_on_one_folder(env, folder_catalog, tmp_path):
    "A second run on a run folder in use fails at once with a clear error; the first finishes."
    args = ['--data', folder_catalog, '--out', tmp_path/'run', '--epochs', 60, '--patience', 1000, '--val_frac', 0.34, *TINY]
    first = subprocess.Popen([command('simsop_train'), *map(str, args)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while not (tmp_path/'run'/'.lock').exists() and time.time() - t0 < 120: time.sleep(0.2)
    time.sleep(1)
    clean_error(run(env, 'simsop_train', *args), 'in use by process')
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err[-2000:]


def test_two_extractions_on_one_cache(env, folder_catalog, tmp_path):
    "Two extractions of one catalog into one cache: the second is told the cache entry is in use; nothing crashes."
    args = [folder_catalog, '--img_size', 64, '--cache_dir', tmp_path/'cache', '--chunk_size', 4, '--batch_size', 2]
    first = subprocess.Popen([command('simsop_extract'), *map(str, args), '--out', str(tmp_path/'a.npy')], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while not list((tmp_path/'cache').glob('*/.lock')) and time.time() - t0 < 120: time.sleep(0.1)
    r = run(env, 'simsop_extract', *args, '--out', tmp_path/'b.npy')
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-2000:]
    assert r.returncode == 0 or (r.returncode == 1 and 'in use by process' in r.stderr and 'Traceback' not in r.stderr), r.stderr[-2000:]


def test_stale_temp_files_removed_and_umask_kept(env, folder_catalog, tmp_path):
    "Temp files a killed run left are removed by the next run; artifacts get the umask's permissions, not 0600."
    cache = tmp_path/'cache'
    r = run(env, 'simsop_extract', folder_catalog, '--img_size', 32, '--cache_dir', cache, '--out', tmp_path/'e.npy', '--chunk_size', 8,
            SIMSOP_FAULT_RENAME='2')
    assert r.returncode == -signal.SIGKILL
    assert list(cache.rglob('.*.tmp')), 'the kill should have left a temp file'
    old = os.umask(0o022)
    try: r = run(env, 'simsop_extract', folder_catalog, '--img_size', 32, '--cache_dir', cache, '--out', tmp_path/'e.npy', '--chunk_size', 8)
    finally: os.umask(old)
    assert r.returncode == 0, r.stderr
    assert not list(cache.rglob('.*.tmp')), list(cache.rglob('.*.tmp'))
    for f in (tmp_path/'e.npy', tmp_path/'e.parquet'): assert oct(f.stat().st_mode & 0o777) == '0o644', (f, oct(f.stat().st_mode))


def test_query_and_demo_screen_a_catalog_folder(env, bad_catalog, folder_catalog, tmp_path):
    "A catalog folder indexed on the fly by `simsop_query`, or read by `simsop_demo`, is screened like the other commands'."
    img = next(folder_catalog.rglob('*.JPG'))
    clean_error(run(env, 'simsop_query', img, '--catalog', bad_catalog), *BAD)
    r = run(env, 'simsop_query', img, '--catalog', bad_catalog, '--on_error', 'skip', '--k', 2, '--json')
    assert r.returncode == 0, r.stderr[-2000:]
    assert len([l for l in r.stderr.splitlines() if l.startswith('skipped: ')]) == 4
    assert len(json.loads(r.stdout.strip().splitlines()[-1])['results']) == 2
    clean_error(run(env, 'simsop_demo', '--data', bad_catalog, '--out', tmp_path/'demo', '--quiet'), *BAD)
