"""Registry: names, info, raw datasets with the paper's split, synthetic data, errors."""

from __future__ import annotations

import numpy as np
import pytest

from shared_data import needs_data_file
from infae_kit.data import dataset_info, list_datasets, load_dataset, make_synthetic
from infae_kit.errors import DataError, DatasetNotFoundError, ParameterError, UnknownDatasetError

needs_data = needs_data_file("ml-100k/u.data")


def test_names_and_info():
    names = list_datasets()
    for name in ("magazine", "ml-1m", "douban", "ml-100k", "ml-latest-small", "douban-book", "douban-music",
                 "netflix", "netflix-sample", "synthetic"):
        assert name in names
    info = dataset_info("ml-1m")
    assert info["kind"] == "preprocessed" and info["citation"] and info["licence"]
    assert info["files"]["hdf5"]["url"] == (
        "https://raw.githubusercontent.com/noveens/infinite_ae_cf/be89111b2ee143540ccc1b43591a7a420cf00450"
        "/data/ml-1m/total_data.hdf5"
    )
    assert info["files"]["index"]["checksum"] == (
        "sha256", "de473c335625a0bdb7d011e831426bd140dc205a078bb35cefc83e8ea29a5bd8")
    assert dataset_info("douban")["files"]["hdf5"]["checksum"][0] == "git_blob_sha1"
    assert dataset_info("ml-100k")["files"]["ratings"]["extract_member"] == "ml-100k/u.data"
    assert dataset_info("netflix")["kind"] == "user-supplied" and dataset_info("synthetic")["kind"] == "synthetic"


def test_unknown_name_lists_known_and_closest():
    with pytest.raises(UnknownDatasetError) as info:
        load_dataset("ml1m")
    assert "'ml-1m'" in str(info.value) and "magazine" in str(info.value)
    with pytest.raises(KeyError):
        dataset_info("nope")


def test_unknown_option_is_rejected():
    with pytest.raises(ParameterError, match="n_userz"):
        load_dataset("synthetic", n_userz=3)


@needs_data
@pytest.mark.parametrize("name, users, removed", [
    ("ml-100k", 943, 0), ("ml-latest-small", 671, 0), ("douban-book", 1870, 240), ("douban-music", 1330, 342)])
def test_raw_datasets_with_paper_split(name, users, removed):
    ds = load_dataset(name, seed=42)
    assert ds.n_users == users and ds.n_removed_users == removed and ds.seed == 42
    again = load_dataset(name, seed=42)
    assert (ds.train != again.train).nnz == 0
    other = load_dataset(name, seed=1)
    assert (ds.train != other.train).nnz > 0
    # Every user has a test item; no pair is in two splits (these files have no repeated pairs).
    assert np.all(np.diff(ds.test.indptr) >= 1)
    assert ds.train.multiply(ds.test).nnz == 0 and ds.train.multiply(ds.val).nnz == 0


@needs_data
def test_ml100k_keeps_timestamps_aligned():
    ds = load_dataset("ml-100k")
    t = ds.interactions
    assert t.timestamp is not None and len(t) == 100_000
    assert t.timestamp.min() >= 874_724_710 and t.timestamp.max() <= 893_286_638


@needs_data
def test_netflix_paths(monkeypatch, tmp_path):
    with pytest.raises(DataError, match="No user is left"):  # 3 movies: no customer rated 3 of them
        load_dataset("netflix-sample")
    monkeypatch.delenv("INFAE_NETFLIX_DIR", raising=False)
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("netflix", data_dir=tmp_path)
    assert "INFAE_NETFLIX_DIR" in str(info.value) and str(tmp_path / "netflix" / "training_set") in str(info.value)
    # A user-supplied folder via the environment variable.
    folder = tmp_path / "ts"
    folder.mkdir()
    for movie in range(1, 5):
        (folder / f"mv_{movie:07d}.txt").write_text(f"{movie}:\n1,5,2005-01-0{movie}\n2,3,2005-02-0{movie}\n")
    monkeypatch.setenv("INFAE_NETFLIX_DIR", str(folder))
    ds = load_dataset("netflix", seed=0)
    assert ds.n_users == 2 and ds.n_items == 4 and ds.train.nnz + ds.val.nnz + ds.test.nnz == 8
    assert load_dataset("netflix", path=folder, max_movies=3).n_items == 3


def test_synthetic_is_deterministic_and_structured():
    a = make_synthetic(n_users=300, n_items=200, seed=5)
    b = make_synthetic(n_users=300, n_items=200, seed=5)
    c = make_synthetic(n_users=300, n_items=200, seed=6)
    np.testing.assert_array_equal(a.item, b.item)
    np.testing.assert_array_equal(a.label, b.label)
    assert len(a) != len(c) or not np.array_equal(a.item, c.item)
    per_user = np.bincount(a.user)
    assert per_user.min() >= 3 and per_user.max() > 3 * np.median(per_user)  # heavy tail
    pop = np.sort(np.bincount(a.item, minlength=200))[::-1]
    assert pop[:20].sum() > pop[-100:].sum()  # Zipf popularity: top 10% of items beat the bottom 50%
    assert np.all((a.label >= 0))  # nobody removed
    ds = load_dataset("synthetic", seed=3, n_users=200, n_items=100)
    assert ds.n_users == 200 and ds.seed == 3 and ds.n_removed_users == 0


def test_synthetic_bad_parameters():
    with pytest.raises(ParameterError):
        make_synthetic(n_items=2)


def test_fractal_expansions_are_registered():
    for name in ("netflix-shape", "netflix-shape-small"):
        info = dataset_info(name)
        assert info["kind"] == "fractal" and "Belletti" in info["citation"] and "ML-1M" in info["licence"]
        assert set(info["options"]) == {"cache"}
    with pytest.raises(ParameterError, match="unknown option"):
        load_dataset("netflix-shape-small", rows=3)
