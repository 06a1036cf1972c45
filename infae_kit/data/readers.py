"""Parsers for raw rating files: MovieLens, generic delimited text, Netflix Prize ``training_set``.

Every reader returns an :class:`~infae_kit.data.dataset.Interactions` table without split labels. Parsing
is vectorised (``np.loadtxt``'s C parser); when the fast path fails, a line-by-line pass finds the first bad
line and raises :class:`~infae_kit.errors.DataFormatError` naming the file, the 1-based line number and the
text. Blank lines are skipped; no other line is ever dropped silently.
"""

from __future__ import annotations

import io
import logging
import os
import re
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from infae_kit.data.dataset import Interactions
from infae_kit.checks import is_real
from infae_kit.errors import DataError, DataFormatError, ParameterError

__all__ = ["ROLES", "read_delimited", "read_movielens", "read_netflix_training_set"]

logger = logging.getLogger(__name__)

ROLES = ("user", "item", "rating", "timestamp")
_SKIP = (None, "", "_", "skip")
_HEADER_WORDS = ("user", "item", "movie", "product", "asin", "customer", "rating", "time", "id")


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"Rating file not found: {path}.") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return text.replace("\r\n", "\n") if "\r" in text else text


def _format_error(path: Path, line_no: int, line: str, why: str) -> DataFormatError:
    shown = line if len(line) <= 200 else line[:200] + "…"
    return DataFormatError(f"{path}, line {line_no}: {why}: {shown!r}")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parse_int(text: str) -> int:
    """An integer field; accepts ``'12'`` and ``'12.0'`` but not ``'12.5'``."""
    try:
        return int(text)
    except ValueError:
        value = float(text)
        if not value.is_integer():
            raise ValueError(f"{text!r} is not an integer") from None
        return int(value)


def _slow_parse(
    path: Path, lines: list[str], first_line_no: int, sep: str, roles: Sequence[str | None], integer_ids: bool = False
) -> dict[str, np.ndarray | list]:
    """Line-by-line parse; raises DataFormatError at the first bad line. Ids are kept as strings (and must read
    as integers when ``integer_ids``)."""
    n_cols = len(roles)
    cols: dict[str, list] = {r: [] for r in roles if r not in _SKIP}
    for offset, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            continue
        line_no = first_line_no + offset
        fields = [f.strip() for f in stripped.split(sep)]
        if len(fields) != n_cols:
            raise _format_error(path, line_no, line, f"expected {n_cols} fields separated by {sep!r}, found {len(fields)}")
        for role, text in zip(roles, fields):
            if role in _SKIP:
                continue
            if role in ("user", "item"):
                if not text:
                    raise _format_error(path, line_no, line, f"empty {role} id")
                if integer_ids:
                    try:
                        int(text)
                    except ValueError:
                        raise _format_error(path, line_no, line, f"{role} id {text!r} is not an integer") from None
                cols[role].append(text)
            elif role == "rating":
                try:
                    value = float(text)
                except ValueError:
                    raise _format_error(path, line_no, line, f"rating {text!r} is not a number") from None
                if not np.isfinite(value):
                    raise _format_error(path, line_no, line, f"rating {text!r} is not finite")
                cols[role].append(value)
            elif role == "timestamp":
                try:
                    cols[role].append(_parse_int(text))
                except (ValueError, OverflowError):
                    raise _format_error(path, line_no, line, f"timestamp {text!r} is not an integer") from None
    return cols


def _ids_to_array(values: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """Integer ids as int64 when every id is an integer; otherwise codes + the string vocabulary."""
    try:
        return np.array([int(v) for v in values], dtype=np.int64), None
    except (ValueError, OverflowError):
        vocab, codes = np.unique(np.array(values, dtype=object).astype(str), return_inverse=True)
        return codes.astype(np.int64).ravel(), vocab


def _fast_parse(text: str, sep: str, roles: Sequence[str | None]) -> dict[str, np.ndarray]:
    """Vectorised parse of all-numeric data lines (no header); raises ValueError on anything unexpected.

    Besides ``np.loadtxt``'s own checks (it fails on a line with too few fields), the separator count must
    be exactly ``(n_columns - 1) × rows``, so no line has extra fields either.
    """
    if len(sep) != 1:
        if "\x1f" in text:
            raise ValueError("unit separator in file")
        text = text.replace(sep, "\x1f")
        sep = "\x1f"
    dtype = []
    usecols = []
    for idx, role in enumerate(roles):
        if role in _SKIP:
            continue
        usecols.append(idx)
        dtype.append((role, np.float64 if role == "rating" else np.int64))
    table = np.loadtxt(
        io.StringIO(text), delimiter=sep, dtype=np.dtype(dtype), usecols=usecols, comments=None, ndmin=1,
        quotechar=None,
    )
    if text.count(sep) != (len(roles) - 1) * table.shape[0]:
        raise ValueError("a line has more fields than columns")
    cols = {name: np.ascontiguousarray(table[name]) for name in table.dtype.names}
    if "rating" in cols and not np.isfinite(cols["rating"]).all():
        raise ValueError("non-finite rating")
    return cols


def _raise_first_bad_line(path: Path, lines: list[str], first_line_no: int, sep: str, roles: Sequence[str | None],
                          integer_ids: bool = False) -> None:
    """Find the first malformed line quickly: fast-parse blocks, slow-parse only the first failing block.

    Raises DataFormatError when that block has a bad line; returns when the block is well-formed (the fast
    path failed only because ids are not integers), so the caller then parses the whole file slowly.
    """
    block = 20_000
    for start in range(0, len(lines), block):
        chunk = lines[start : start + block]
        try:
            _fast_parse("\n".join(chunk), sep, roles)
        except ValueError:
            _slow_parse(path, chunk, first_line_no + start, sep, roles, integer_ids)
            return


def read_delimited(
    path: str | os.PathLike,
    sep: str = ",",
    columns: Sequence[str | None] = ("user", "item", "rating", "timestamp"),
    header: None | str | bool = None,
    min_rating: float | None = None,
    integer_ids: bool = False,
) -> Interactions:
    """Read a delimited rating file (one interaction per line).

    Args:
        path: the file.
        sep: field separator (may be several characters, e.g. ``'::'``).
        columns: role of each column, in file order: ``'user'``, ``'item'`` (required), ``'rating'``,
            ``'timestamp'`` (optional), or ``None`` / ``'_'`` for a column to ignore. Every line must have
            exactly ``len(columns)`` fields.
        header: ``None`` (no header), ``True`` (skip the first line) or ``'infer'`` (skip the first line
            when its rating/timestamp fields are not numbers, or, without such columns, when no field is).
        min_rating: keep only rows with ``rating >= min_rating`` (logged; needs a rating column).
        integer_ids: user and item ids must be integers (a line with another id is an error naming it).

    Returns:
        Interactions with int64 ids when every id is an integer, else int64 codes plus the string
        vocabularies ``user_ids`` / ``item_ids``; float32 ratings and int64 timestamps when present.

    Raises:
        DataFormatError: a malformed line (file, 1-based line number and text are named).
        DataError: missing/empty file, no data rows, bad ``columns``.
    """
    path = Path(path)
    roles = [None if c in _SKIP else str(c) for c in columns]
    for role in roles:
        if role is not None and role not in ROLES:
            raise DataError(f"Unknown column role {role!r} in columns={tuple(columns)}; use one of {ROLES} or None.")
    named = [r for r in roles if r is not None]
    if "user" not in named or "item" not in named or len(set(named)) != len(named):
        raise DataError(f"columns={tuple(columns)} must name 'user' and 'item' exactly once each (and no role twice).")
    if min_rating is not None and "rating" not in named:
        raise DataError("min_rating needs a 'rating' column.")
    if min_rating is not None and not is_real(min_rating):
        raise ParameterError(f"min_rating must be a number (rows with rating >= it are kept), got {min_rating!r}.")
    text = _read_text(path)
    if not text.strip():
        raise DataError(f"{path} is empty: no interactions to read.")
    first_line, _, rest = text.partition("\n")
    skip_rows = 0
    if header is True:
        skip_rows = 1
    elif header == "infer":
        first = [f.strip() for f in first_line.strip().split(sep)]
        numeric_roles = [i for i, r in enumerate(roles) if r in ("rating", "timestamp") and i < len(first)]
        if numeric_roles:
            skip_rows = int(any(not _is_number(first[i]) for i in numeric_roles))
        else:  # string ids possible: only a line that looks like column names counts as a header
            skip_rows = int(
                not any(_is_number(f) for f in first)
                and any(word in f.lower() for f in first for word in _HEADER_WORDS)
            )
        if skip_rows:
            logger.info("%s: first line taken as a header and skipped: %r", path, first_line.strip())
    elif header not in (None, False):
        raise DataError(f"header must be None, True or 'infer', got {header!r}.")
    data_text = rest if skip_rows else text
    if not data_text.strip():
        raise DataError(f"{path} has no data rows (only a header or blank lines).")

    cols: dict[str, np.ndarray]
    user_vocab = item_vocab = None
    try:
        cols = _fast_parse(data_text, sep, roles)
    except ValueError:
        lines = data_text.split("\n")
        _raise_first_bad_line(path, lines, skip_rows + 1, sep, roles, integer_ids)
        parsed = _slow_parse(path, lines, skip_rows + 1, sep, roles, integer_ids)
        cols = {}
        cols["user"], user_vocab = _ids_to_array(parsed["user"])
        cols["item"], item_vocab = _ids_to_array(parsed["item"])
        if "rating" in parsed:
            cols["rating"] = np.asarray(parsed["rating"], dtype=np.float64)
        if "timestamp" in parsed:
            cols["timestamp"] = np.asarray(parsed["timestamp"], dtype=np.int64)
    interactions = Interactions(
        user=cols["user"], item=cols["item"], rating=cols.get("rating"), timestamp=cols.get("timestamp"),
        user_ids=user_vocab, item_ids=item_vocab, source=str(path),
    )
    if len(interactions) == 0:
        raise DataError(f"{path} has no data rows.")
    if min_rating is not None:
        keep = interactions.rating >= min_rating
        logger.info("%s: min_rating=%s keeps %d of %d rows.", path, min_rating, int(keep.sum()), len(interactions))
        interactions = interactions.subset(keep)
        if len(interactions) == 0:
            raise DataError(f"{path}: no row has rating >= {min_rating}.")
    return interactions


def read_movielens(path: str | os.PathLike) -> Interactions:
    """Read a MovieLens rating file, detecting its format by name, then by content.

    * ``ratings.dat`` (ML-1M/10M): ``UserID::MovieID::Rating::Timestamp``.
    * ``u.data`` (ML-100K): tab-separated ``user item rating timestamp``.
    * ``ratings.csv`` (ml-latest*, ML-20M/25M): header ``userId,movieId,rating,timestamp``.

    Args:
        path: the rating file (or a folder holding one of the files above).

    Returns:
        Interactions with int64 user and movie ids, float32 ratings and int64 timestamps.

    Raises:
        DataFormatError: a malformed line; DataError: unrecognised or missing file.
    """
    path = Path(path)
    if path.is_dir():
        for candidate in ("ratings.dat", "u.data", "ratings.csv"):
            if (path / candidate).is_file():
                path = path / candidate
                break
        else:
            raise DataError(f"No MovieLens rating file (ratings.dat, u.data, ratings.csv) in {path}.")
    if not path.is_file():
        raise DataError(f"MovieLens rating file not found: {path}.")
    with open(path, "rb") as fh:
        head = fh.readline().decode("utf-8", errors="replace")
    name = path.name.lower()
    if "::" in head or name.endswith(".dat"):
        sep, header = "::", None
    elif "\t" in head or name == "u.data" or name.endswith(".data"):
        sep, header = "\t", None
    elif "," in head or name.endswith(".csv"):
        sep, header = ",", "infer"
    else:
        raise DataError(
            f"Cannot tell the MovieLens format of {path} from its name or first line {head.strip()!r}; "
            "use read_delimited(path, sep=...) instead."
        )
    return read_delimited(path, sep=sep, columns=ROLES, header=header, integer_ids=True)


_NETFLIX_HEADER = re.compile(r"^\s*(\d+)\s*:\s*$")


def _netflix_files(dir_or_files: str | os.PathLike | Iterable[str | os.PathLike], max_movies: int | None) -> list[Path]:
    if isinstance(dir_or_files, (str, os.PathLike)):
        root = Path(dir_or_files)
        if root.is_dir():
            files = sorted(root.glob("mv_*.txt"))
            if not files:
                raise DataError(f"No Netflix Prize movie files (mv_*.txt) in {root}.")
        elif root.is_file():
            files = [root]
        else:
            raise DataError(f"Netflix Prize training_set not found: {root}.")
    else:
        files = [Path(f) for f in dir_or_files]
        if not files:
            raise DataError("read_netflix_training_set: empty list of files.")
    if max_movies is not None:
        files = files[: int(max_movies)]
    return files


def _read_netflix_file(path: Path) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    text = _read_text(path)
    lines = text.split("\n")
    if not text.strip():
        raise DataError(f"{path} is empty: a Netflix movie file starts with 'MovieID:'.")
    match = _NETFLIX_HEADER.match(lines[0])
    if not match:
        raise _format_error(path, 1, lines[0], "expected the movie header 'MovieID:'")
    movie = int(match.group(1))
    body = "\n".join(lines[1:])
    if not body.strip():
        raise DataError(f"{path}: movie {movie} has no ratings.")
    try:
        table = np.loadtxt(
            io.StringIO(body), delimiter=",", dtype=np.dtype([("c", np.int64), ("r", np.float64), ("d", "U10")]),
            comments=None, ndmin=1, quotechar=None,
        )
        if body.count(",") != 2 * table.shape[0]:
            raise ValueError("a line has more than 3 fields")
        dates = table["d"].astype("datetime64[D]")
        if np.isnat(dates).any():
            raise ValueError("NaT")
        customer, rating = table["c"], table["r"]
        if not np.isfinite(rating).all():
            raise ValueError("rating")
    except ValueError:
        customers, ratings, days = [], [], []
        for offset, line in enumerate(lines[1:]):
            if not line.strip():
                continue
            line_no = offset + 2
            fields = [f.strip() for f in line.strip().split(",")]
            if len(fields) != 3:
                raise _format_error(path, line_no, line, f"expected 'CustomerID,Rating,YYYY-MM-DD', found {len(fields)} fields")
            try:
                customers.append(int(fields[0]))
            except ValueError:
                raise _format_error(path, line_no, line, f"customer id {fields[0]!r} is not an integer") from None
            try:
                value = float(fields[1])
                if not np.isfinite(value):
                    raise ValueError
                ratings.append(value)
            except ValueError:
                raise _format_error(path, line_no, line, f"rating {fields[1]!r} is not a number") from None
            try:
                if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", fields[2]):
                    raise ValueError
                days.append(np.datetime64(fields[2], "D"))
            except ValueError:
                raise _format_error(path, line_no, line, f"date {fields[2]!r} is not YYYY-MM-DD") from None
        customer = np.asarray(customers, dtype=np.int64)
        rating = np.asarray(ratings, dtype=np.float64)
        dates = np.asarray(days, dtype="datetime64[D]")
    timestamp = dates.astype("datetime64[s]").astype(np.int64)
    return movie, customer, rating, timestamp


def read_netflix_training_set(
    dir_or_files: str | os.PathLike | Iterable[str | os.PathLike], max_movies: int | None = None
) -> Interactions:
    """Read Netflix Prize ``training_set/mv_*.txt`` files.

    Each file: a first line ``MovieID:``, then one ``CustomerID,Rating,YYYY-MM-DD`` per line. The date
    becomes a Unix timestamp (midnight UTC).

    Args:
        dir_or_files: the ``training_set`` folder, one file, or a list of files.
        max_movies: read only the first ``max_movies`` files (sorted by name) — for quick experiments.

    Returns:
        Interactions: user = CustomerID, item = MovieID (int64), float32 rating, int64 timestamp.

    Raises:
        DataFormatError: malformed header or line (file, line number, text); DataError: no files / empty file.
    """
    files = _netflix_files(dir_or_files, max_movies)
    users, items, ratings, stamps = [], [], [], []
    for path in files:
        movie, customer, rating, timestamp = _read_netflix_file(path)
        users.append(customer)
        items.append(np.full(customer.shape[0], movie, dtype=np.int64))
        ratings.append(rating)
        stamps.append(timestamp)
    source = str(files[0].parent) if len(files) > 1 else str(files[0])
    return Interactions(
        user=np.concatenate(users), item=np.concatenate(items), rating=np.concatenate(ratings),
        timestamp=np.concatenate(stamps), source=source,
    )
