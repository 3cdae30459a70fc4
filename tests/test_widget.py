"""Headless tests of the query picker (simsop.domain_shift.QueryPicker): no browser, the widgets driven from Python."""
import datetime, os
from pathlib import Path
import pytest

from simsop.core import Config, shared_data
from simsop.data import synthetic_catalog

HEIC = shared_data('heic', quiet=True)


@pytest.fixture(scope='module')
def engines(tmp_path_factory):
    from simsop.search import Searcher
    cfg = Config(artifacts=tmp_path_factory.mktemp('artifacts'), img_size=64, device='cpu', num_workers=0)
    df = synthetic_catalog(cfg, n_products=12)
    test, train = df[df.split == 'test'].reset_index(drop=True), df[df.split == 'train'].reset_index(drop=True)
    s_test = Searcher.build(test, None, cfg, progress=False, name='t')
    built = []
    def lazy_train():
        built.append(1); return Searcher.build(train, None, cfg, progress=False, name='tr')
    return {('test split', 'offline backbone'): s_test, ('train split', 'offline backbone'): lazy_train}, test, built


@pytest.fixture
def picker(engines):
    from simsop.search import QueryPicker
    eng, test, _ = engines
    return QueryPicker(eng, queries=test.head(6), k=3)


def shown(p):
    "The HTML the picker's Output area holds."
    return ''.join(o.get('data', {}).get('text/html', '') for o in p.out.outputs)


def upload(name, data):
    return {'name': name, 'type': 'image/heic', 'size': len(data), 'content': memoryview(data),
            'last_modified': datetime.datetime.now(datetime.timezone.utc)}


def test_dropdown_query_shows_k_results(picker, engines):
    _, test, built = engines
    assert shown(picker) == '' and picker.results is None
    path = picker.query.options[2][1]
    picker.query.value = path
    html = shown(picker)
    assert html.count('class="simsop-result"') == 3 and html.count('class="simsop-query"') == 1
    r = picker.results
    assert list(r['rank']) == [1, 2, 3] and picker.errors == []
    assert r['path'].iloc[0] == path and r['score'].iloc[0] > 0.99          # the query itself is in this catalog
    assert r['score'].is_monotonic_decreasing
    qcls = int(test.loc[test.path == path, 'class_id'].iloc[0])
    assert f'product {qcls}' in html                                          # product ids are shown
    picker.k.value = 5                                                        # the slider re-runs the query
    assert shown(picker).count('class="simsop-result"') == 5 and len(picker.results) == 5
    assert not built
    picker.catalog.value = 'train split'                                      # another catalog: built on demand
    assert built == [1] and shown(picker).count('class="simsop-result"') == 5
    assert path not in set(picker.results['path'])                            # test images are not in the train catalog
    picker.mode.value = 'multi'
    assert shown(picker).count('class="simsop-result"') == 5


@pytest.mark.skipif(HEIC is None, reason='shared HEIC photos not found')
def test_upload_real_heic(picker):
    data = (HEIC/'pug.heic').read_bytes()
    picker.upload.value = (upload('pug.heic', data),)
    html = shown(picker)
    assert picker.errors == [], picker.errors
    assert html.count('class="simsop-result"') == 3 and 'pug.heic' in html
    assert len(picker.results) == 3 and set(picker.results['query']) == {'pug.heic'}


@pytest.mark.skipif(HEIC is None, reason='shared HEIC photos not found')
@pytest.mark.parametrize('bad', ['corrupted.heic', 'truncated.heic', 'empty.heic', 'corrupted.hif'])
def test_upload_bad_heic_shows_error(picker, bad):
    data = (HEIC/bad).read_bytes()
    picker.upload.value = (upload(bad, data), upload('pug.heic', (HEIC/'pug.heic').read_bytes()))
    html = shown(picker)
    assert len(picker.errors) == 1 and bad in picker.errors[0]
    assert html.count('class="simsop-error"') == 1 and bad in html
    assert html.count('class="simsop-result"') == 3                          # the good file still answers
    assert '1 error' in picker.status.value


def test_broken_engine_is_shown_not_raised(engines):
    from simsop.search import QueryPicker
    eng, test, _ = engines
    def broken(): raise FileNotFoundError('artifacts/indexes/nope: not a saved catalog index')
    p = QueryPicker({('nope', 'm'): broken}, queries=test.head(2))
    p.query.value = p.query.options[1][1]
    assert 'simsop-error' in shown(p) and 'not a saved catalog index' in shown(p)
