"""Checksummed downloads into the cache: stream to a temporary file, verify, then rename atomically."""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from infae_kit.errors import ChecksumError, DatasetNotFoundError
from infae_kit.io_utils import make_temp_file, progress_bar

__all__ = [
    "CHECKSUM_KINDS",
    "DownloadError",
    "file_checksum",
    "fetch_file",
]

logger = logging.getLogger(__name__)

CHECKSUM_KINDS = ("sha256", "git_blob_sha1")
_CHUNK = 1 << 20
_PROGRESS_MIN_BYTES = 1 << 20


class DownloadError(DatasetNotFoundError):
    """A file could not be downloaded (HTTP error, network failure)."""


def file_checksum(path: str | os.PathLike, kind: str = "sha256") -> str:
    """Hex digest of a file.

    Args:
        path: the file.
        kind: ``'sha256'``, or ``'git_blob_sha1'`` (sha1 of ``b"blob <size>\\0" + content``, the id git gives
            a file's content; lets a file be checked against a repository listing).
    """
    path = Path(path)
    if kind == "sha256":
        digest = hashlib.sha256()
    elif kind == "git_blob_sha1":
        digest = hashlib.sha1()
        digest.update(b"blob %d\0" % path.stat().st_size)
    else:
        raise ValueError(f"Unknown checksum kind {kind!r}; use one of {CHECKSUM_KINDS}.")
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _matches(path: Path, checksum: tuple[str, str] | None) -> bool:
    if checksum is None:
        return True
    kind, expected = checksum
    return file_checksum(path, kind) == expected.lower()


def _remove(path: Path | str | None) -> None:
    if path is None:
        return
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _stream(url: str, fh, timeout: float, label: str) -> None:
    try:
        response = urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 (URLs come from the registry)
    except urllib.error.HTTPError as err:
        raise DownloadError(
            f"Download of {url} failed: HTTP {err.code} {err.reason}. Check the URL, or obtain the file by "
            "hand and put it where the error of load_dataset says."
        ) from None
    except (urllib.error.URLError, OSError) as err:
        raise DownloadError(f"Download of {url} failed: {err}. Check the network connection or download by hand.") from None
    with response:
        total = response.headers.get("Content-Length")
        total = int(total) if total and total.isdigit() else None
        with progress_bar(total=total, unit="B", unit_scale=True, desc=label,
                          enabled=total is None or total >= _PROGRESS_MIN_BYTES) as bar:
            while True:
                try:
                    chunk = response.read(_CHUNK)
                except OSError as err:
                    raise DownloadError(f"Download of {url} was interrupted: {err}.") from None
                if not chunk:
                    break
                fh.write(chunk)
                bar.update(len(chunk))
            if total is not None and fh.tell() != total:
                raise DownloadError(f"Download of {url} is incomplete: {fh.tell()} of {total} bytes.")


def fetch_file(
    url: str,
    dest: str | os.PathLike,
    checksum: tuple[str, str] | None = None,
    *,
    extract_member: str | None = None,
    timeout: float = 60,
) -> Path:
    """Download ``url`` to ``dest`` unless a file with the right checksum is already there.

    The download goes to a temporary file in ``dest``'s folder; it is checked and only then renamed onto
    ``dest`` (atomic), so ``dest`` never holds a partial or wrong file and a good cached file is never
    replaced by a bad one.

    Args:
        url: source URL (``http``, ``https`` or ``file``).
        dest: final path.
        checksum: ``(kind, hexdigest)`` with kind ``'sha256'`` or ``'git_blob_sha1'``; checked on the final
            file (the extracted member when ``extract_member`` is given). ``None`` skips the check (a
            warning is logged).
        extract_member: name of a member of the downloaded zip archive to extract to ``dest``.
        timeout: socket timeout in seconds.

    Returns:
        ``dest`` as a Path.

    Raises:
        ChecksumError: the downloaded file's checksum differs (expected and actual are named).
        DownloadError: HTTP error or network failure (a :class:`DatasetNotFoundError`).
    """
    dest = Path(dest)
    if checksum is not None:
        kind, expected = checksum
        if kind not in CHECKSUM_KINDS:
            raise ValueError(f"Unknown checksum kind {kind!r}; use one of {CHECKSUM_KINDS}.")
        checksum = (kind, expected.lower())
    else:
        logger.warning("fetch_file(%s): no checksum given; the file is not verified.", url)
    if dest.is_file():
        if _matches(dest, checksum):
            logger.info("Using cached %s (checksum OK).", dest)
            return dest
        logger.warning("Cached %s has a wrong checksum; downloading it again.", dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = make_temp_file(dest.parent, f".{dest.name}.", ".part")
    member_tmp = None
    try:
        with os.fdopen(fd, "wb") as fh:
            _stream(url, fh, timeout, dest.name)
        final_tmp = Path(tmp_name)
        if extract_member is not None:
            fd2, member_tmp = make_temp_file(dest.parent, f".{dest.name}.", ".member")
            try:
                with zipfile.ZipFile(tmp_name) as zf, os.fdopen(fd2, "wb") as out:
                    try:
                        info = zf.getinfo(extract_member)
                    except KeyError:
                        raise DownloadError(
                            f"{url} has no member {extract_member!r} (members: {zf.namelist()[:20]})."
                        ) from None
                    with zf.open(info) as src:
                        for chunk in iter(lambda: src.read(_CHUNK), b""):
                            out.write(chunk)
            except zipfile.BadZipFile:
                raise DownloadError(f"{url} is not a valid zip archive.") from None
            final_tmp = Path(member_tmp)
        if checksum is not None:
            actual = file_checksum(final_tmp, checksum[0])
            if actual != checksum[1]:
                raise ChecksumError(
                    f"Checksum mismatch for {url}" + (f" member {extract_member}" if extract_member else "")
                    + f": expected {checksum[0]} {checksum[1]}, got {actual}. The file was not saved to {dest}. "
                    "The source may have changed; check the registry entry."
                )
        os.replace(final_tmp, dest)
    finally:
        _remove(tmp_name)
        _remove(member_tmp)
    logger.info("Downloaded %s to %s.", url, dest)
    return dest
