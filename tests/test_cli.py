"""The console scripts: `--help` explains every option; `simsop_index` / `simsop_query` / `simsop_eval` /
`simsop_demo` run end to end on a small synthetic catalog, and bad HEIC files give one clear error line each.

Each command runs as the installed `simsop_*` executable (pip's console_scripts entry point), and its exit status is
checked: 0 on success, 1 on a user error (one `error:` line, no traceback), 2 on a usage error."""
import importlib, inspect, json, os, shutil, subprocess, sys
from pathlib import Path
import pytest
import torch

from simsop.core import shared_data
from conftest import command

HEIC = shared_data('heic', quiet=True)
ROOT = Path(__file__).resolve().parents[1]

# console_scripts entry points (settings.ini): every command is the function of the same name in simsop.cli
COMMANDS = ['simsop_extract', 'simsop_train', 'simsop_eval', 'simsop_index', 'simsop_query', 'simsop_dedup', 'simsop_demo']


@pytest.fixture(scope='module')
def env(tmp_path_factory):
    e = dict(os.environ, SIMSOP_ARTIFACTS=str(tmp_path_factory.mktemp('artifacts')), SIMSOP_DEVICE='cpu',
             PYTHONWARNINGS='ignore', HF_HUB_OFFLINE='1')
    e.pop('SIMSOP_SCALE', None)
    return e


def run(env, name, *args, timeout=600):
    "Run the installed command `name` (its console_scripts entry point) with `args`."
    return subprocess.run([command(name)] + [str(a) for a in args], capture_output=True, text=True, env=env, timeout=timeout,
                          cwd=str(ROOT))


@pytest.mark.parametrize('name', COMMANDS)
def test_help_explains_every_option(env, name):
    from fastcore.script import anno_parser
    f = getattr(importlib.import_module('simsop.cli'), name)
    f = getattr(f, '__wrapped__', f)
    r = run(env, name, '--help', timeout=300)
    assert r.returncode == 0, r.stderr
    out = ' '.join(r.stdout.split())
    actions = [a for a in anno_parser(f)._actions if a.dest not in ('help', 'pdb', 'xtra')]
    assert {a.dest for a in actions} == set(inspect.signature(f).parameters)
    for a in actions:
        assert a.help and a.help.strip(), f'{name}: option {a.dest!r} has no help text'
        assert a.dest in r.stdout, f'{name} --help does not mention {a.dest!r}:\n{r.stdout}'
        assert ' '.join(a.help.split())[:30] in out, f'{name} --help lacks the text of {a.dest!r}'
    assert ' '.join((f.__doc__ or '').split())[:40] in out


@pytest.fixture(scope='module')
def index_dir(env, tmp_path_factory):
    out = tmp_path_factory.mktemp('idx')/'synthetic'
    r = run(env, 'simsop_index', '--n_products', 12, '--img_size', 64, '--split', 'test', '--out', out, '--quiet')
    assert r.returncode == 0, r.stderr[-3000:]
    files = json.loads((out/'searcher.json').read_text())['files']
    assert (out/files['index']).exists() and (out/files['catalog']).exists() and 'indexed' in r.stdout
    return out


def table_rows(stdout):
    "Data rows of the Markdown tables printed (the lines after each header's |---| separator)."
    rows, in_table = [], False
    for l in stdout.splitlines():
        if not l.startswith('|'): in_table = False; continue
        if set(l) <= set('|-: '): in_table = True; continue
        if in_table: rows.append(l)
    return rows


@pytest.mark.skipif(HEIC is None, reason='shared HEIC photos not found')
def test_query_heic_prints_k_results(env, index_dir):
    r = run(env, 'simsop_query', HEIC/'pug.heic', '--catalog', index_dir, '--k', 4)
    assert r.returncode == 0, r.stderr[-3000:]
    assert len(table_rows(r.stdout)) == 4 and 'pug.heic' in r.stdout
    r = run(env, 'simsop_query', HEIC/'pug.heic', HEIC/'arrow.heic', '--catalog', index_dir, '--k', 3,
            '--json', '--mode', 'multi')
    assert r.returncode == 0, r.stderr[-3000:]
    res = [json.loads(l) for l in r.stdout.splitlines() if l.startswith('{')]
    assert [Path(x['query']).name for x in res] == ['pug.heic', 'arrow.heic']
    for x in res:
        assert len(x['results']) == 3 and x['mode'] == 'multi'
        assert [y['rank'] for y in x['results']] == [1, 2, 3]
        assert all(isinstance(y['class_id'], int) and -1 <= y['score'] <= 1 for y in x['results'])


@pytest.mark.skipif(HEIC is None, reason='shared HEIC photos not found')
@pytest.mark.parametrize('bad', ['corrupted.heic', 'truncated.heic', 'empty.heic'])
def test_bad_heic_one_clear_error_line(env, index_dir, bad):
    r = run(env, 'simsop_query', HEIC/bad, '--catalog', index_dir)
    assert r.returncode != 0
    errs = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(errs) == 1, r.stderr
    assert errs[0].startswith('error: ') and bad in errs[0] and 'Traceback' not in r.stderr
    assert table_rows(r.stdout) == []


@pytest.mark.skipif(HEIC is None, reason='shared HEIC photos not found')
def test_folder_of_queries_good_and_bad(env, index_dir, tmp_path):
    for f in ('pug.heic', 'corrupted.heic', 'empty.heic'): shutil.copy(HEIC/f, tmp_path/f)
    from PIL import Image
    Image.new('RGB', (50, 40), 'red').save(tmp_path/'red.png')
    r = run(env, 'simsop_query', tmp_path, '--catalog', index_dir, '--k', 2)
    assert r.returncode == 1
    assert len(table_rows(r.stdout)) == 4                      # pug.heic and red.png answered
    errs = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(errs) == 2 and any('corrupted.heic' in l for l in errs) and any('empty.heic' in l for l in errs)


def test_query_without_index_is_a_clear_error(env, tmp_path):
    from PIL import Image
    Image.new('RGB', (50, 40), 'red').save(tmp_path/'red.png')
    r = run(env, 'simsop_query', tmp_path/'red.png', '--catalog', tmp_path/'nope')
    assert r.returncode == 1 and 'Traceback' not in r.stderr   # a user error (the folder): 1, one error line
    assert r.stderr.strip().count('\n') == 0 and 'nope' in r.stderr


def test_eval_prints_metrics_json(env):
    r = run(env, 'simsop_eval', '--n_products', 12, '--img_size', 64, '--quiet')
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    for k in ('R@1', 'R@5', 'R@10', 'MAP@R'): assert 0 <= res[k] <= 1
    assert res['R@1'] <= res['R@5'] <= res['R@10'] and res['n_queries'] > 0


def test_demo_small_end_to_end(env, tmp_path):
    out = tmp_path/'demo'
    r = run(env, 'simsop_demo', '--n_products', 24, '--epochs', 3, '--out', out, '--quiet')
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'Before/after' in r.stdout and 'fine-tuned' in r.stdout and 'baseline' in r.stdout
    assert len(table_rows(r.stdout)) == 2
    for f in ('report.md', 'retrieval_grid.png', 'results.parquet', 'index/searcher.json'):
        assert (out/f).exists(), f
    assert 'R@1' in (out/'report.md').read_text()
    if HEIC is not None:                                       # the demo's index answers phone photos
        q = run(env, 'simsop_query', HEIC/'pug.heic', '--catalog', out/'index', '--k', 3, '--json')
        assert q.returncode == 0, q.stderr[-3000:]
        assert len(json.loads(q.stdout.strip().splitlines()[-1])['results']) == 3


def test_checkpoint_backbone_embedding(env, tmp_path):
    "A full-mode checkpoint's fine-tuned backbone (`--embed backbone`) evaluates, indexes and answers queries like its head output."
    run_dir = tmp_path/'run'
    r = run(env, 'simsop_train', '--n_products', 12, '--backbone', 'resnet10t', '--weights', 'random', '--img_size', 32,
            '--batch_size', 8, '--epochs', 1, '--out', run_dir, '--quiet')
    assert r.returncode == 0, r.stderr[-3000:]
    best = run_dir/'best.pt'
    res = {}
    for e in ('head', 'backbone'):
        r = run(env, 'simsop_eval', '--n_products', 12, '--model', best, '--embed', e, '--json', '--quiet')
        assert r.returncode == 0, r.stderr[-3000:]
        res[e] = json.loads(r.stdout.strip().splitlines()[-1])
        assert res[e]['embed'] == e and 0 <= res[e]['MAP@R'] <= 1
    assert res['head']['R@1'] != res['backbone']['R@1'] or res['head']['MAP@R'] != res['backbone']['MAP@R']
    chose = torch.load(best, weights_only=True)['embed']                          # no --embed: what the run chose
    r = run(env, 'simsop_eval', '--n_products', 12, '--model', best, '--json', '--quiet')
    assert r.returncode == 0 and json.loads(r.stdout.strip().splitlines()[-1])['embed'] == chose in ('head', 'backbone'), r.stderr[-3000:]
    width = torch.load(best, weights_only=True)['spec']['embed_dim']               # chosen by the run (embed_dim 0)
    for e, dim in (('head', width), ('backbone', 512)):        # resnet10t: 512-d pooled features
        r = run(env, 'simsop_index', '--n_products', 12, '--model', best, '--embed', e, '--out', tmp_path/e, '--quiet')
        assert r.returncode == 0, r.stderr[-3000:]
        info = json.loads((tmp_path/e/'searcher.json').read_text())
        assert info['dim'] == dim and info['model']['embed'] == e and info['model']['checkpoint'] == str(best.resolve())
        assert info['data_config']['input_size'] == [3, 32, 32]   # the checkpoint's input size, not the config's
    from PIL import Image
    Image.new('RGB', (40, 40), (200, 30, 30)).save(tmp_path/'red.png')
    q = run(env, 'simsop_query', tmp_path/'red.png', '--catalog', tmp_path/'backbone', '--k', 3, '--json')
    assert q.returncode == 0, q.stderr[-3000:]
    assert len(json.loads(q.stdout.strip().splitlines()[-1])['results']) == 3
    r = run(env, 'simsop_eval', '--n_products', 12, '--embed', 'backbone', '--quiet')   # no checkpoint: a clear error
    assert r.returncode != 0 and 'needs a checkpoint' in r.stderr and 'Traceback' not in r.stderr


GROCERY = shared_data('grocery', quiet=True)


@pytest.mark.skipif(GROCERY is None, reason='needs the Grocery Store Dataset in ../shared/data/grocery')
def test_train_with_studio_images_then_eval_against_them(env, tmp_path):
    """A catalog with studio images (Grocery's iconic images, split 'catalog') and a val split: simsop_train validates on
    the val photos, chooses how many copies of the studio images join the training rows, and simsop_eval measures test
    photos against the studio images, in any query mode."""
    run_dir = tmp_path/'run'
    small = ('--classes', '0-4', '--img_size', 32, '--embed_dim', 64, '--head_hidden', 64, '--batch_size', 8, '--epochs', 1)   # 5 products
    r = run(env, 'simsop_train', '--data', GROCERY, '--mode', 'fast', *small, '--out', run_dir, '--quiet')
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res['val'] == 'split' and res['catalog_copies'] in (0, 1, 3, 6, 10), res
    table = (run_dir/'catalog_copies.csv').read_text()
    assert 'backbone off the shelf' in table and 'catalog images:' in r.stderr
    import pandas as pd                          # the query modes, tuned on the val photos against both galleries
    qm = pd.read_csv(run_dir/'query_modes.csv')
    assert set(qm.gallery) == {'photos', 'catalog'} and 'query modes: box weights chosen on validation photos' in r.stderr, r.stderr
    assert res['query_modes'] == {m: w for m, w in qm[qm.chosen][['mode', 'box_weight']].values if w != 1}, (res, qm)
    r1 = lambda m: qm[(qm['mode'] == m) & qm.chosen].set_index('gallery')['R1']
    for mode in ('full', 'flip'):
        r = run(env, 'simsop_eval', '--data', GROCERY, '--model', run_dir/'best.pt', '--split', 'test', '--gallery', 'catalog',
                '--classes', '0-4', '--mode', mode, '--json', '--quiet')
        assert r.returncode == 0, r.stderr[-3000:]
        ev = json.loads(r.stdout.strip().splitlines()[-1])
        assert (ev['gallery'], ev['mode'], ev['embed']) == ('catalog', mode, res['best_embed']) and 0 < ev['R@1'] <= 1, ev
        lost = bool((r1(mode) < r1('full')).any())  # a mode below the full photo on validation says so
        assert (ev['note'] is not None, 'note: query mode' in r.stderr) == (lost, lost), (ev, r.stderr)
    full = tmp_path/'full'                       # full mode: a fast run chooses the copies, the fine-tune trains with them
    r = run(env, 'simsop_train', '--data', GROCERY, *small, '--max_steps', 1, '--out', full, '--quiet')
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res['kind'] == 'full' and res['val'] == 'split' and (full/'catalog'/'catalog_copies.csv').exists(), res
    import csv
    with open(full/'catalog'/'catalog_copies.csv') as f: cands = list(csv.DictReader(f))[1:]   # after the backbone's row
    assert res['catalog_copies'] == int(max(cands, key=lambda c: (float(c['catalog_R1']), -int(c['copies'])))['copies']), (res, cands)


def test_train_config_file(env, tmp_path):
    "A run writes config.toml; --config starts another run from it (options given win); a resume with other settings is refused."
    import tomllib
    a, b = tmp_path/'a', tmp_path/'b'
    r = run(env, 'simsop_train', '--n_products', 12, '--backbone', 'resnet10t', '--weights', 'random', '--img_size', 32,
            '--batch_size', 8, '--max_steps', 2, '--loss', 'ms', '--out', a, '--quiet')
    assert r.returncode == 0, r.stderr[-3000:]
    r = run(env, 'simsop_train', '--config', a/'config.toml', '--out', b, '--max_steps', 3, '--quiet')
    assert r.returncode == 0, r.stderr[-3000:]
    ta, tb = (tomllib.loads((d/'config.toml').read_text()) for d in (a, b))
    assert (ta['loss'], ta['max_steps'], tb['max_steps'], ta['n_products']) == ('ms', 2, 3, 12)
    assert {k: v for k, v in ta.items() if k != 'max_steps'} == {k: v for k, v in tb.items() if k != 'max_steps'}
    assert json.loads(r.stdout.strip().splitlines()[-1])['step'] == 3
    r = run(env, 'simsop_train', '--config', a/'config.toml', '--out', a, '--loss', 'supcon', '--quiet')
    assert r.returncode != 0 and "loss 'ms' -> 'supcon'" in r.stderr and 'Traceback' not in r.stderr, r.stderr[-2000:]


@pytest.mark.parametrize('k', [0, -1])
def test_query_k_below_one_is_a_usage_error(env, index_dir, tmp_path, k):
    from PIL import Image
    Image.new('RGB', (40, 40), 'red').save(tmp_path/'red.png')
    r = run(env, 'simsop_query', tmp_path/'red.png', '--catalog', index_dir, '--k', k)
    assert r.returncode == 2 and '--k must be at least 1' in r.stderr and 'Traceback' not in r.stderr


def test_unknown_choice_is_a_usage_error(env):
    r = run(env, 'simsop_eval', '--embed', 'neck')
    assert r.returncode == 2 and "invalid choice: 'neck'" in r.stderr
