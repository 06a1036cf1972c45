"""Raw readers: MovieLens formats, generic delimited files, Netflix Prize training_set."""

from __future__ import annotations

import time

import numpy as np
import pytest

from infae_kit import paths
from infae_kit.data import read_delimited, read_movielens, read_netflix_training_set
from infae_kit.errors import DataError, DataFormatError

DATA = paths.data_dir()


def _need(rel):
    if DATA is None or not (DATA / rel).exists():
        pytest.skip(f"shared data file {rel} absent (set INFAE_DATA_DIR)")
    return DATA / rel


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_movielens_three_formats(tmp_path):
    dat = _write(tmp_path, "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n2::3408::4::978300275\n")
    udata = _write(tmp_path, "u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    csv = _write(tmp_path, "ratings.csv", "userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n1,1029,3.0,1260759179\n")
    a = read_movielens(dat)
    np.testing.assert_array_equal(a.user, [1, 1, 2])
    np.testing.assert_array_equal(a.item, [1193, 661, 3408])
    np.testing.assert_array_equal(a.timestamp, [978300760, 978302109, 978300275])
    assert a.user.dtype == np.int64 and a.rating.dtype == np.float32 and a.timestamp.dtype == np.int64
    b = read_movielens(udata)
    np.testing.assert_array_equal(b.item, [242, 302])
    c = read_movielens(csv)
    np.testing.assert_array_equal(c.rating, [2.5, 3.0])
    assert len(c) == 2  # header skipped, not parsed
    # A folder holding one of the files works too.
    assert len(read_movielens(tmp_path)) == 3  # ratings.dat is preferred


def test_real_movielens_files_parse_fast_and_completely():
    udata = _need("ml-100k/u.data")
    start = time.perf_counter()
    t = read_movielens(udata)
    assert time.perf_counter() - start < 3.0
    assert len(t) == 100_000 and np.unique(t.user).size == 943 and np.unique(t.item).size == 1682
    assert np.bincount(t.rating.astype(int))[1:].tolist() == [6110, 11370, 27145, 34174, 21201]
    csv = _need("ml-latest-small/ratings.csv")
    t = read_movielens(csv)
    assert len(t) == 100_004 and np.unique(t.user).size == 671 and np.unique(t.item).size == 9066
    assert t.rating.min() == 0.5 and t.timestamp.min() > 7.8e8


def test_real_douban_book_tsv():
    path = _need("douban/dtcdr_ga-dtcdr/douban_book/ratings.dat")
    t = read_delimited(path, sep="\t", columns=("user", "item", "rating"))
    assert len(t) == 96_041 and np.unique(t.user).size == 2110 and t.timestamp is None


def test_delimited_string_ids_are_factorised_and_kept(tmp_path):
    path = _write(tmp_path, "amazon.csv", "B00X,AH2,5.0,1005177600\nB00X,AOS,4.0,1004486400\nB00Y,AH2,3.0,1004486400\n")
    t = read_delimited(path, columns=("item", "user", "rating", "timestamp"))
    assert t.user_ids.tolist() == ["AH2", "AOS"] and t.item_ids.tolist() == ["B00X", "B00Y"]
    np.testing.assert_array_equal(t.original_user_ids(), ["AH2", "AOS", "AH2"])
    np.testing.assert_array_equal(t.original_item_ids(), ["B00X", "B00X", "B00Y"])
    np.testing.assert_array_equal(t.timestamp, [1005177600, 1004486400, 1004486400])


def test_delimited_header_infer_skip_columns_and_min_rating(tmp_path):
    path = _write(tmp_path, "r.csv", "user,item,extra,score\n1,10,x,4\n2,10,y,1\n2,11,z,5\n")
    t = read_delimited(path, columns=("user", "item", None, "rating"), header="infer", min_rating=4)
    np.testing.assert_array_equal(t.user, [1, 2])
    np.testing.assert_array_equal(t.rating, [4, 5])
    no_header = _write(tmp_path, "n.csv", "1,10\n2,10\n")
    assert len(read_delimited(no_header, columns=("user", "item"), header="infer")) == 2
    # String ids without a header: the first line is data, not a header.
    strings = _write(tmp_path, "s.csv", "alice,book\nbob,film\n")
    assert len(read_delimited(strings, columns=("user", "item"), header="infer")) == 2
    named = _write(tmp_path, "h.csv", "user_id,item_id\nalice,book\n")
    assert read_delimited(named, columns=("user", "item"), header="infer").user_ids.tolist() == ["alice"]


@pytest.mark.parametrize(
    "text, line_no, needle",
    [
        ("1::10::5::100\n1::11::5\n1::12::4::100\n", 2, "expected 4 fields"),
        ("1::10::5::100\n1::11::5::100\n1::12::four::100\n", 3, "rating 'four'"),
        ("1::10::5::100\n1::11::5::2001-01-01\n", 2, "timestamp"),
        ("1::10::5::100\n\n1::11::5::100::9\n", 3, "found 5"),
    ],
)
def test_malformed_lines_name_file_line_and_text(tmp_path, text, line_no, needle):
    path = _write(tmp_path, "ratings.dat", text)
    with pytest.raises(DataFormatError) as info:
        read_movielens(path)
    msg = str(info.value)
    assert str(path) in msg and f"line {line_no}" in msg and needle in msg
    assert text.split("\n")[line_no - 1] in msg


def test_header_line_numbers_are_file_lines(tmp_path):
    path = _write(tmp_path, "ratings.csv", "userId,movieId,rating,timestamp\n1,2,3,4\n1,2,nan,4\n")
    with pytest.raises(DataFormatError, match="line 3"):
        read_movielens(path)


def test_empty_files_are_errors(tmp_path):
    with pytest.raises(DataError, match="empty"):
        read_delimited(_write(tmp_path, "e.csv", "\n\n"))
    with pytest.raises(DataError, match="no data rows"):
        read_movielens(_write(tmp_path, "ratings.csv", "userId,movieId,rating,timestamp\n"))
    with pytest.raises(DataError, match="not found"):
        read_delimited(tmp_path / "missing.csv")


def test_netflix_sample():
    folder = _need("netflix-sample/training_set_format")
    t = read_netflix_training_set(folder)
    assert len(t) == 869
    movies, counts = np.unique(t.item, return_counts=True)
    assert movies.tolist() == [11, 12, 13] and counts.tolist() == [198, 546, 125]
    first_11 = t.timestamp[t.item == 11]
    assert np.datetime64(int(first_11.min()), "s") == np.datetime64("2003-05-25T00:00:00")
    assert np.datetime64(int(first_11.max()), "s") == np.datetime64("2005-12-23T00:00:00")
    assert t.user[0] == 862759 and t.rating[0] == 5
    assert len(read_netflix_training_set(folder, max_movies=1)) == 198
    # The repository's reshaped form matches row for row.
    src = _need("netflix-sample/as_stored_in_source/mv_0000012.txt")
    alt = read_delimited(src, columns=("item", "user", "rating", None))
    np.testing.assert_array_equal(alt.user, t.user[t.item == 12])


def test_netflix_errors(tmp_path):
    good = "5:\n100,3,2005-01-02\n"
    (tmp_path / "mv_0000005.txt").write_text(good)
    (tmp_path / "mv_0000006.txt").write_text("6:\n100,3,2005-01-02\n101,4,2005-13-40\n")
    with pytest.raises(DataFormatError) as info:
        read_netflix_training_set(tmp_path)
    assert "mv_0000006.txt" in str(info.value) and "line 3" in str(info.value) and "2005-13-40" in str(info.value)
    bad_header = tmp_path / "x" / "mv_1.txt"
    bad_header.parent.mkdir()
    bad_header.write_text("100,3,2005-01-02\n")
    with pytest.raises(DataFormatError, match="line 1"):
        read_netflix_training_set(bad_header)
    with pytest.raises(DataError, match="not found"):
        read_netflix_training_set(tmp_path / "none")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(DataError, match="No Netflix"):
        read_netflix_training_set(tmp_path / "empty_dir")
    t = read_netflix_training_set([tmp_path / "mv_0000005.txt"])
    assert t.timestamp.tolist() == [int(np.datetime64("2005-01-02", "s").astype(np.int64))]


def test_bad_line_deep_in_a_large_file_is_located(tmp_path):
    n = 70_000
    lines = [f"{i % 500}\t{i % 997}\t{1 + i % 5}\t{880_000_000 + i}" for i in range(n)]
    lines[61_234] = "17\t42\t4"  # line 61,235 has a missing field
    path = _write(tmp_path, "u.data", "\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match="line 61235"):
        read_movielens(path)
    lines[61_234] = "17\t42\t4\t880000000\t9"  # an extra field
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match="line 61235.*found 5"):
        read_movielens(path)


def test_windows_line_endings(tmp_path):
    path = tmp_path / "u.data"
    path.write_bytes(b"1\t2\t3\t4\r\n5\t6\t4\t8\r\n")
    t = read_movielens(path)
    np.testing.assert_array_equal(t.timestamp, [4, 8])


def test_interactions_validate_alignment_and_labels():
    from infae_kit.data import Interactions

    with pytest.raises(DataError, match="aligned"):
        Interactions(user=np.arange(3), item=np.arange(2))
    with pytest.raises(DataError, match="257"):
        Interactions(user=np.arange(2), item=np.arange(2), label=np.array([0, 257]))


def _netflix_lines(n, seed=0):
    rng = np.random.default_rng(seed)
    days = np.datetime_as_string(np.datetime64("1999-11-11") + rng.integers(0, 2240, n))
    return [f"{c},{r},{d}" for c, r, d in zip(rng.integers(1, 2_649_430, n), rng.integers(1, 6, n), days)]


def test_netflix_vectorised_and_line_parsers_agree(tmp_path):
    from infae_kit.data.readers import _parse_netflix_bytes, _parse_netflix_lines

    folder = _need("netflix-sample/training_set_format")
    files = sorted(folder.glob("mv_*.txt"))
    generated = tmp_path / "mv_0000042.txt"
    generated.write_text("42:\n" + "\n".join(_netflix_lines(5000) + ["7,5,2004-02-29", "123456789,1,1900-01-01"]))
    outside = tmp_path / "mv_0000043.txt"  # dates outside the lookup table's 1900-2099 take the general formula
    outside.write_text("43:\n1,2,1850-03-01\n2,3,2100-02-28\n3,4,0001-01-01\n")
    for path in files + [generated, outside]:
        data = path.read_bytes()
        fast = _parse_netflix_bytes(data)
        assert fast is not None, path
        slow = _parse_netflix_lines(path, data.decode())
        assert fast[0] == slow[0]
        for a, b in zip(fast[1:], slow[1:]):
            np.testing.assert_array_equal(a, b)
    movie, customer, rating, day = _parse_netflix_bytes(generated.read_bytes())
    assert customer.dtype == np.int32 and day.dtype == np.int32 and rating.dtype == np.float32
    assert day[-2] == np.datetime64("2004-02-29").astype(np.int64)
    assert day[-1] == np.datetime64("1900-01-01").astype(np.int64)
    # other layouts fall back to the line-by-line parser, which reads them the same
    for variant in ("42:\r\n7,5,2005-01-02\r\n", "42:\n 7 , 5 , 2005-01-02\n\n", "42:\n7,5.0,2005-01-02\n"):
        assert _parse_netflix_bytes(variant.encode()) is None
        (tmp_path / "v").mkdir(exist_ok=True)
        path = tmp_path / "v" / "mv_0000042.txt"
        path.write_bytes(variant.encode())
        t = read_netflix_training_set(path)
        assert t.user.tolist() == [7] and t.rating.tolist() == [5.0]
        assert t.timestamp.tolist() == [int(np.datetime64("2005-01-02", "s").astype(np.int64))]


@pytest.mark.parametrize("bad, why", [
    ("abc,3,2005-01-01", "customer id"),
    ("12,3", "found 2 fields"),
    ("12,3,2005-01-01,7", "found 4 fields"),
    ("12,,2005-01-01", "rating"),
    ("12,3,2005-02-30", "date"),
    ("12,3,05-01-01", "date"),
])
def test_netflix_bad_line_is_named_with_file_and_line(tmp_path, bad, why):
    from infae_kit.data.readers import read_netflix_csr

    lines = _netflix_lines(3000, seed=1)
    lines[2456] = bad  # file line 2458 (after the header)
    (tmp_path / "mv_0000001.txt").write_text("1:\n" + "\n".join(_netflix_lines(50)) + "\n")
    (tmp_path / "mv_0000002.txt").write_text("2:\n" + "\n".join(lines) + "\n")
    for reader in (read_netflix_csr, read_netflix_training_set):
        with pytest.raises(DataFormatError) as info:
            reader(tmp_path)
        message = str(info.value)
        assert "mv_0000002.txt" in message and "line 2458" in message and why in message and bad in message


def test_netflix_csr_matches_the_long_table(tmp_path):
    from infae_kit.data.readers import read_netflix_csr

    folder = _need("netflix-sample/training_set_format")
    X, customers, movies = read_netflix_csr(folder)
    t = read_netflix_training_set(folder)
    assert X.shape == (np.unique(t.user).size, 3) and X.nnz == len(t) == 869
    assert X.indices.dtype == np.int32 and X.has_sorted_indices and movies.tolist() == [11, 12, 13]
    rows, cols = X.nonzero()
    assert sorted(zip(customers[rows].tolist(), movies[cols].tolist())) == sorted(zip(t.user.tolist(), t.item.tolist()))
    assert np.all(np.diff(customers) > 0)
    high = read_netflix_csr(folder, min_rating=4)[0]
    assert high.nnz == int((t.rating >= 4).sum())
    assert read_netflix_csr(folder, max_movies=1)[0].shape[1] == 1
    # files out of movie order, a movie split over two files, a movie left empty by min_rating
    (tmp_path / "mv_a.txt").write_text("9:\n5,3,2005-01-01\n6,2,2005-01-01\n")
    (tmp_path / "mv_b.txt").write_text("4:\n5,3,2005-01-01\n")
    (tmp_path / "mv_c.txt").write_text("9:\n7,4,2005-01-01\n")
    (tmp_path / "mv_d.txt").write_text("2:\n7,1,2005-01-01\n")
    X, customers, movies = read_netflix_csr(tmp_path, min_rating=2)
    assert movies.tolist() == [4, 9] and customers.tolist() == [5, 6, 7]
    np.testing.assert_array_equal(X.toarray(), [[1, 1], [0, 1], [0, 1]])
    with pytest.raises(DataError, match="no rating is left"):
        read_netflix_csr(tmp_path, min_rating=6)
