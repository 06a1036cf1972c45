"""Checksummed downloads against a local HTTP server (never the internet)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import zipfile

import numpy as np
import pytest

from infae_kit.data import DownloadError, fetch_file, file_checksum, load_dataset
from infae_kit.data import registry
from infae_kit.errors import ChecksumError, DatasetNotFoundError
from local_http import serve_folder


@pytest.fixture()
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    with serve_folder(root) as (base, hits):
        yield root, base, hits


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_download_verify_and_cache_reuse(server, tmp_path):
    root, base, hits = server
    payload = b"hello ratings\n" * 1000
    (root / "f.bin").write_bytes(payload)
    dest = tmp_path / "cache" / "f.bin"
    out = fetch_file(f"{base}/f.bin", dest, ("sha256", _sha256(payload)))
    assert out == dest and dest.read_bytes() == payload and len(hits) == 1
    fetch_file(f"{base}/f.bin", dest, ("sha256", _sha256(payload)))
    assert len(hits) == 1  # cached file with the right checksum: no request
    assert [p.name for p in dest.parent.iterdir()] == ["f.bin"]  # no temp files left


def test_git_blob_sha1_checksum(server, tmp_path):
    root, base, _ = server
    payload = b"abc\n"
    (root / "g").write_bytes(payload)
    blob = hashlib.sha1(b"blob 4\0" + payload).hexdigest()
    assert blob == "8baef1b4abc478178b004d62031cf7fe6db6f903"  # `git hash-object` of "abc\n"
    dest = fetch_file(f"{base}/g", tmp_path / "g", ("git_blob_sha1", blob))
    assert file_checksum(dest, "git_blob_sha1") == blob


def test_checksum_mismatch_leaves_nothing_and_keeps_good_file(server, tmp_path):
    root, base, _ = server
    (root / "f.bin").write_bytes(b"tampered")
    dest = tmp_path / "c" / "f.bin"
    with pytest.raises(ChecksumError) as info:
        fetch_file(f"{base}/f.bin", dest, ("sha256", "0" * 64))
    assert "0" * 64 in str(info.value) and _sha256(b"tampered") in str(info.value)
    assert not dest.exists() and list(dest.parent.iterdir()) == []
    # A good cached file is never replaced by a bad download.
    good = b"good"
    dest.write_bytes(good)
    with pytest.raises(ChecksumError):
        fetch_file(f"{base}/f.bin", dest, ("sha256", _sha256(b"something else")))
    assert dest.read_bytes() == good and [p.name for p in dest.parent.iterdir()] == ["f.bin"]


def test_http_404_is_a_clear_error(server, tmp_path):
    _, base, _ = server
    dest = tmp_path / "c" / "missing.bin"
    with pytest.raises(DownloadError) as info:
        fetch_file(f"{base}/missing.bin", dest, ("sha256", "0" * 64))
    assert "404" in str(info.value) and f"{base}/missing.bin" in str(info.value)
    assert isinstance(info.value, DatasetNotFoundError)
    assert not dest.exists() and list(dest.parent.iterdir()) == []


def test_zip_member_extraction(server, tmp_path):
    root, base, _ = server
    member = b"1\t2\t3\t4\n5\t6\t4\t8\n"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ml-100k/u.data", member)
        zf.writestr("ml-100k/README", b"readme")
    (root / "ml-100k.zip").write_bytes(buf.getvalue())
    dest = tmp_path / "c" / "u.data"
    fetch_file(f"{base}/ml-100k.zip", dest, ("sha256", _sha256(member)), extract_member="ml-100k/u.data")
    assert dest.read_bytes() == member and [p.name for p in dest.parent.iterdir()] == ["u.data"]
    with pytest.raises(DownloadError, match="no member"):
        fetch_file(f"{base}/ml-100k.zip", tmp_path / "c" / "x", None, extract_member="nope")


def test_load_dataset_download_end_to_end(server, tmp_path, monkeypatch):
    h5py = pytest.importorskip("h5py")
    root, base, hits = server
    rng = np.random.default_rng(0)
    user = np.repeat(np.arange(20), 5)
    item = rng.integers(0, 30, size=user.size)
    label = np.tile(np.array([2, 0, 0, 0, 1]), 20)
    label[:5] = -1
    with h5py.File(root / "total_data.hdf5", "w") as fh:
        fh["user"], fh["item"], fh["rating"] = user, item, np.ones(user.size, np.float32)
    np.savez(root / "index.npz", data=label)
    spec = registry._REGISTRY["magazine"]
    files = {
        "hdf5": dataclasses.replace(spec.files["hdf5"], url=f"{base}/total_data.hdf5",
                                    checksum=("sha256", file_checksum(root / "total_data.hdf5"))),
        "index": dataclasses.replace(spec.files["index"], url=f"{base}/index.npz",
                                     checksum=("sha256", file_checksum(root / "index.npz"))),
    }
    monkeypatch.setitem(registry._REGISTRY, "magazine", dataclasses.replace(spec, files=files))
    monkeypatch.setenv("INFAE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("INFAE_DOWNLOAD", raising=False)
    empty = tmp_path / "empty_data"
    empty.mkdir()
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("magazine", data_dir=empty)
    assert f"{base}/index.npz" in str(info.value) and str(empty / "magazine" / "index.npz") in str(info.value)
    assert hits == []
    ds = load_dataset("magazine", data_dir=empty, download=True)
    assert ds.n_users == 19 and ds.n_removed_users == 1
    assert (tmp_path / "cache" / "magazine" / "total_data.hdf5").is_file()
    assert sorted(hits) == ["/index.npz", "/total_data.hdf5"]
    ds2 = load_dataset("magazine", data_dir=empty)  # found in the cache, no new request
    assert len(hits) == 2 and ds2.train.nnz == ds.train.nnz
    monkeypatch.setenv("INFAE_DOWNLOAD", "1")  # env switch works too (nothing to fetch here)
    assert load_dataset("magazine", data_dir=empty).n_users == 19
