"The catalog-cleaning command line tool (`simsop_dedup`) end to end in a subprocess, on a folder catalog with planted duplicates."
import json, os, shutil, subprocess, sys
from pathlib import Path
import pandas as pd
import pytest
from conftest import command
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def _cli(tmp_path):
    "The installed command."
    return [command('simsop_dedup')]


def _folder_catalog(tmp_path):
    "`root/<super>/<product>/<image>`: 8 synthetic products x 3 views, plus a copy and a re-encoded, shrunk copy under other products."
    from simsop.data import make_synthetic_sop, read_sop
    sop = make_synthetic_sop(tmp_path/'sop', n_products=8, seed=1, size=96, per_product=(3, 3))
    df = read_sop(sop)
    root = tmp_path/'catalog'
    for r in df.itertuples():
        d = root/r.super_class/f'p{r.class_id:03d}'; d.mkdir(parents=True, exist_ok=True)
        shutil.copy(r.path, d/Path(r.path).name)
    first = sorted((root).rglob('*.JPG'))
    a, b = first[0], first[5]                      # views of two different products
    dirs = sorted({p.parent for p in first})
    others = [d for d in dirs if d not in (a.parent, b.parent)]
    shutil.copy(a, others[0]/'copy_of_a.JPG')
    im = Image.open(b).convert('RGB')
    im.resize((int(im.width * .7), int(im.height * .7)), Image.LANCZOS).save(others[1]/'reencoded_b.JPG', 'JPEG', quality=60)
    return root, a, b, others[0]/'copy_of_a.JPG', others[1]/'reencoded_b.JPG'


def test_dedup_cli_finds_planted_groups(tmp_path):
    root, a, b, ca, rb = _folder_catalog(tmp_path)
    out = tmp_path/'report'
    cmd = _cli(tmp_path) + [str(root), '--out', str(out), '--quiet', '--img_size', '96']
    env = {**os.environ, 'SIMSOP_ARTIFACTS': str(tmp_path/'artifacts'), 'SIMSOP_DEVICE': 'cpu', 'SIMSOP_SCALE': 'quick'}
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary['groups'] == 2 and summary['images_in_groups'] == 4, summary
    g = pd.read_parquet(out/'near_duplicates.parquet')
    found = sorted(sorted(Path(p).name for p in d.path) for _, d in g.groupby('group_id'))
    assert found == sorted([sorted([a.name, ca.name]), sorted([b.name, rb.name])])
    for f in ('near_duplicates.png', 'dup_threshold.png'):
        assert Image.open(out/f).size[0] > 100


def test_dedup_cli_names_missing_folder(tmp_path):
    cmd = _cli(tmp_path) + [str(tmp_path/'nope')]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 1 and 'nope' in r.stderr and 'Traceback' not in r.stderr
