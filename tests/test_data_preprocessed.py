"""The paper's preprocessed files: exact counts, validation, and the split rule against the paper's labels."""

from __future__ import annotations

import numpy as np
import pytest

from shared_data import needs_data_file
from infae_kit import paths
from infae_kit.data import (
    Interactions,
    build_rec_dataset,
    load_dataset,
    load_preprocessed,
    read_preprocessed_interactions,
    split_counts_per_user,
    split_per_user,
)
from infae_kit.errors import DataError, DataFormatError, DatasetNotFoundError

DATA = paths.data_dir()
needs_data = needs_data_file("ml-1m/index.npz")


def _write_pair(tmp_path, user, item, label, *, rating=None, time=None):
    h5py = pytest.importorskip("h5py")
    hdf5 = tmp_path / "total_data.hdf5"
    with h5py.File(hdf5, "w") as fh:
        fh["user"] = np.asarray(user, dtype=np.int32)
        fh["item"] = np.asarray(item, dtype=np.int32)
        fh["rating"] = np.asarray(rating if rating is not None else np.ones(len(user)), dtype=np.float32)
        if time is not None:
            fh["time"] = np.asarray(time, dtype=np.int32)
    index = tmp_path / "index.npz"
    np.savez(index, data=np.asarray(label, dtype=np.int64))
    return hdf5, index


@needs_data
def test_ml1m_counts_match_the_paper():
    ds = load_dataset("ml-1m")
    assert (ds.n_users, ds.n_items) == (6040, 3706)
    assert (ds.train.nnz, ds.val.nnz, ds.test.nnz) == (791_718, 99_692, 108_799)
    assert ds.all_positives().nnz == 1_000_209
    assert ds.n_removed_users == 0 and ds.n_duplicate_pairs == 0 and ds.seed is None
    assert ds.train.dtype == np.float32 and ds.train.has_sorted_indices
    assert set(np.unique(ds.train.data)) == {1.0}
    # Remap: sorted original ids (users 0..6039, movie ids 1..3952 with 3,706 distinct).
    assert np.all(np.diff(ds.item_ids) > 0) and ds.item_ids[0] == 1 and ds.item_ids[-1] == 3952
    np.testing.assert_array_equal(ds.user_ids, np.arange(6040))
    # First row of the hdf5: user 0 rated movie 1193.
    col = int(np.searchsorted(ds.item_ids, 1193))
    assert ds.all_positives()[0, col] == 1.0


@needs_data
def test_magazine_counts_match_the_paper():
    ds = load_dataset("magazine")
    assert (ds.n_users, ds.n_items) == (3092, 1305)
    assert ds.train.nnz == 5934 and ds.val.nnz == 436 and ds.test.nnz == 6145
    assert ds.n_removed_users == 69_006 == 72_098 - 3092
    # 12,689 kept rows, 12,217 distinct pairs: 472 repeated rows (50 within train, 124 within test, rest across).
    assert ds.n_duplicate_pairs == 472
    labels = ds.interactions.label
    assert int((labels == 0).sum()) == 5984 and int((labels == 2).sum()) == 6269
    assert ds.interactions.timestamp is not None and ds.interactions.timestamp.dtype == np.int64
    assert set(np.unique(ds.train.data)) == {1.0}  # binary, not the official code's 2s


@needs_data
@pytest.mark.parametrize("name", ["ml-1m", "magazine"])
def test_split_rule_reproduces_the_papers_per_user_counts(name):
    table = read_preprocessed_interactions(DATA / name / "total_data.hdf5", DATA / name / "index.npz")
    users, user_code, count = np.unique(table.user, return_inverse=True, return_counts=True)
    paper = np.zeros((users.size, 4), dtype=np.int64)  # columns: -1, train, val, test
    np.add.at(paper, (user_code, table.label.astype(np.int64) + 1), 1)
    # Users with < 3 rows are entirely -1; the others never have -1.
    small = count < 3
    assert np.all(paper[small, 0] == count[small]) and np.all(paper[~small, 0] == 0)
    np.testing.assert_array_equal(paper[:, 1:], split_counts_per_user(count))
    # And our vectorised split of the same rows gives every user exactly those counts.
    ours = split_per_user(Interactions(user=table.user, item=table.item), seed=123)
    mine = np.zeros_like(paper)
    np.add.at(mine, (user_code, ours.label.astype(np.int64) + 1), 1)
    np.testing.assert_array_equal(mine, paper)


@needs_data
def test_douban_without_ratings_file_names_file_location_source_and_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("INFAE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("INFAE_DOWNLOAD", raising=False)
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("douban")
    msg = str(info.value)
    for needle in (
        "total_data.hdf5",
        str(DATA / "douban" / "total_data.hdf5"),
        "noveens/infinite_ae_cf",
        "be89111b2ee143540ccc1b43591a7a420cf00450",
        "data/douban/total_data.hdf5",
        "b44e87d1ba114c4f809bf8ff43c211eceb1b5d99",
        "4 MiB",
        "INFAE_DATA_DIR",
        "download=True",
    ):
        assert needle in msg, needle


def test_build_drops_removed_rows_remaps_and_collapses_repeats(tmp_path):
    # user 7: 3 rows (one repeated train pair), user 3: removed, user 9: 4 rows incl. a pair in train and test.
    user = [7, 7, 7, 7, 3, 3, 9, 9, 9, 9]
    item = [50, 50, 20, 30, 99, 98, 20, 40, 40, 60]
    label = [0, 0, 2, 2, -1, -1, 0, 0, 2, 1]
    hdf5, index = _write_pair(tmp_path, user, item, label, time=np.arange(10))
    ds = load_preprocessed(hdf5, index, name="toy")
    np.testing.assert_array_equal(ds.user_ids, [7, 9])
    np.testing.assert_array_equal(ds.item_ids, [20, 30, 40, 50, 60])  # 98, 99 only in removed rows
    assert ds.n_removed_users == 1
    assert ds.n_duplicate_pairs == 2  # (7, 50) twice in train; (9, 40) in train and test
    assert ds.train.toarray().tolist() == [[0, 0, 0, 1, 0], [1, 0, 1, 0, 0]]
    assert ds.test.toarray().tolist() == [[1, 1, 0, 0, 0], [0, 0, 1, 0, 0]]
    assert ds.val.toarray().tolist() == [[0, 0, 0, 0, 0], [0, 0, 0, 0, 1]]
    assert ds.train_val().toarray().tolist() == [[0, 0, 0, 1, 0], [1, 0, 1, 0, 1]]


def test_length_mismatch_names_both_files_and_lengths(tmp_path):
    hdf5, index = _write_pair(tmp_path, [1, 1, 1], [1, 2, 3], [0, 2, 2, 0])
    with pytest.raises(DataFormatError) as info:
        load_preprocessed(hdf5, index)
    msg = str(info.value)
    assert str(hdf5) in msg and str(index) in msg and "4" in msg and "3" in msg


def test_bad_labels_are_rejected(tmp_path):
    hdf5, index = _write_pair(tmp_path, [1, 1, 1], [1, 2, 3], [0, 5, 2])
    with pytest.raises(DataFormatError, match="5"):
        load_preprocessed(hdf5, index)


def test_all_rows_removed_is_a_clear_error(tmp_path):
    hdf5, index = _write_pair(tmp_path, [1, 1], [1, 2], [-1, -1])
    with pytest.raises(DataError, match="no user is left"):
        load_preprocessed(hdf5, index)


def test_build_requires_labels():
    with pytest.raises(DataError, match="split_per_user"):
        build_rec_dataset(Interactions(user=[1, 1, 1], item=[1, 2, 3]), name="x")


def test_repeats_count_reproduces_the_official_code_matrix():
    """docs/evaluation.md: the paper's code builds Magazine's train CSR from ones without collapsing repeats:
    5,984 rows, 5,934 non-zeros, 50 entries equal to 2."""
    from infae_kit.paths import data_dir

    root = data_dir()
    if root is None or not (root / "magazine" / "total_data.hdf5").exists():
        pytest.skip("magazine data not available (set INFAE_DATA_DIR)")
    from infae_kit.data import load_dataset

    counted = load_dataset("magazine", repeats="count")
    binary = load_dataset("magazine")
    assert counted.train.nnz == binary.train.nnz == 5934
    assert int((counted.train.data == 2).sum()) == 50 and counted.train.sum() == 5984
    assert set(np.unique(binary.train.data)) == {1.0}
    with pytest.raises(ValueError, match="repeats"):
        load_dataset("magazine", repeats="sum")
