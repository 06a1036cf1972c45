"""The kit's one data fingerprint, cache paths, format checks and damaged entries (infae_kit.caching)."""

import json
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp

from infae_kit.caching import (
    CacheFormatWarning,
    DamagedCacheWarning,
    check_cache_format,
    data_name,
    dataset_fingerprint,
    entry_path,
    key_digest,
    matrix_sha256,
    read_json_entry,
    read_keyed_row,
    safe_name,
    set_aside,
    write_keyed_row,
)


@pytest.fixture
def tiny():
    X = sp.random(30, 20, density=0.2, format="csr", random_state=0)
    X.data[:] = 1
    return SimpleNamespace(train=X, name="tiny set/1", item_ids=np.arange(20))


def test_distill_cache_keys_are_unchanged(tiny):
    """DISTILL-CF supports are the kit's most expensive cache: the shared fingerprint keeps their paths.

    The digest was computed with the distill cache's own key code before it moved onto ``infae_kit.caching``.
    """
    from infae_kit.distill import DistillConfig, distill_cache_path

    assert distill_cache_path(tiny, DistillConfig(budget=5), "c").name == "tiny_set_1-mu5-bdcfe8dbf166"
    assert dataset_fingerprint(tiny)["train_sha256"].startswith("9025049c69221cfa")


def test_fingerprint_sees_every_part_of_the_data(tiny):
    base = dataset_fingerprint(tiny)
    assert base == {"name": "tiny set/1", "n_users": 30, "n_items": 20,
                    "item_ids_sha256": base["item_ids_sha256"], "train_sha256": matrix_sha256(tiny.train)}
    flipped = tiny.train.tolil()
    flipped[0, 0] = 1 - flipped[0, 0]
    changes = [
        dataset_fingerprint(SimpleNamespace(train=flipped.tocsr(), name=tiny.name, item_ids=tiny.item_ids)),
        dataset_fingerprint(tiny, name="other"),
        dataset_fingerprint(tiny, item_ids=np.arange(20)[::-1]),
        dataset_fingerprint(SimpleNamespace(train=tiny.train[:-1], name=tiny.name, item_ids=tiny.item_ids)),
    ]
    assert all(c != base for c in changes)
    assert len({json.dumps(c, sort_keys=True) for c in changes}) == len(changes)
    # a bare matrix: no name, no item ids; the same matrix dense or sparse is the same data
    bare = dataset_fingerprint(tiny.train)
    assert bare["name"] == "" and bare["item_ids_sha256"] is None
    assert dataset_fingerprint(tiny.train.toarray()) == bare


def test_entry_paths_are_readable_safe_and_keyed(tmp_path):
    assert safe_name("ml 1m/../x") == "ml_1m_.._x" and safe_name("") == "data"
    assert data_name(SimpleNamespace(name="")) == "data" and data_name(SimpleNamespace(name="ml-1m")) == "ml-1m"
    key = {"format": 2, "seed": 0, "grid": [1.0, 5.0]}
    path = entry_path(tmp_path, "ml-1m/user-rns", key, ".json")
    assert path.parent == tmp_path and path.name == f"ml-1m_user-rns-{key_digest(key)}.json"
    assert len(key_digest(key)) == 12
    assert key_digest(dict(reversed(list(key.items())))) == key_digest(key)  # order of the keys does not count
    assert entry_path(tmp_path, "ml-1m/user-rns", dict(key, seed=1), ".json") != path


def test_a_cache_folder_warns_once_about_entries_of_another_format(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_cache_format(tmp_path / "new", "cells", 2, "*.json")  # an empty folder: nothing to warn about
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "a-0123456789ab.json").write_text("{}")
    (folder / "unrelated.npz").write_text("")
    with pytest.warns(CacheFormatWarning, match=r"1 cells cache entries in a format before 2"):
        check_cache_format(folder, "cells", 2, "*.json")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_cache_format(folder, "cells", 2, "*.json")  # recorded: no second warning
    with pytest.warns(CacheFormatWarning, match="in format 2; this version of infae_kit writes format 3"):
        check_cache_format(folder, "cells", 3, "*.json")


def test_keyed_rows_read_back_only_for_their_own_key(tmp_path):
    path = tmp_path / "cell.json"
    key = {"format": 1, "data": {"n_users": 3}, "path": tmp_path}  # a non-JSON value compares through str
    assert read_keyed_row(path, key) is None
    write_keyed_row(path, key, {"HR@10": 12.5})
    assert read_keyed_row(path, key) == {"HR@10": 12.5}
    assert read_keyed_row(path, dict(key, format=2)) is None
    assert path.exists()  # another key leaves the entry in place


def test_damaged_entries_are_set_aside_and_read_as_missing(tmp_path):
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text('{"row": 1}')
    bad.write_text('{"row": ')
    assert read_json_entry(good) == {"row": 1}
    assert read_json_entry(tmp_path / "missing.json") is None
    with pytest.warns(DamagedCacheWarning, match="bad.json could not be read"):
        assert read_json_entry(bad) is None
    assert not bad.exists()
    (aside,) = tmp_path.glob("bad.json.damaged-*")
    assert aside.read_text() == '{"row": '
    folder = tmp_path / "entry"
    folder.mkdir()
    with pytest.warns(DamagedCacheWarning):
        moved = set_aside(folder, "truncated card")
    with pytest.warns(DamagedCacheWarning):
        folder.mkdir()
        again = set_aside(folder, "truncated again")  # a second damage in the same second gets its own name
    assert moved.is_dir() and again.is_dir() and moved != again and not folder.exists()
