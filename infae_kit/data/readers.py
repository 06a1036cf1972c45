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
import scipy.sparse as sp

from infae_kit.data.dataset import Interactions
from infae_kit.checks import is_real
from infae_kit.errors import DataError, DataFormatError, ParameterError

__all__ = [
    "ROLES",
    "read_delimited",
    "read_movielens",
    "read_netflix_training_set",
]

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


_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
_TABLE_FIRST_YEAR, _TABLE_YEARS = 1900, 200  # dates of these years convert through one table lookup


def _days_since_epoch(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray | None:
    """(n,) int32 days since 1970-01-01 of valid proleptic Gregorian dates; ``None`` if any date is invalid."""
    year, month, day = (np.asarray(a, dtype=np.int64) for a in (year, month, day))
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    if ((month < 1) | (month > 12)).any():
        return None
    last_day = _DAYS_IN_MONTH[month] + (leap & (month == 2))
    if ((day < 1) | (day > last_day)).any():
        return None
    # days from civil (H. Hinnant's algorithm), with March as the first month of the year
    y = year - (month <= 2)
    era = y // 400
    year_of_era = y - era * 400
    day_of_year = (153 * np.where(month > 2, month - 3, month + 9) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return (era * 146097 + day_of_era - 719468).astype(np.int32)


def _date_table() -> np.ndarray:
    """Days since 1970-01-01 at index ``((year − 1900)·12 + month − 1)·31 + day − 1``; −2³¹ if invalid."""
    year, month, day = np.meshgrid(np.arange(_TABLE_FIRST_YEAR, _TABLE_FIRST_YEAR + _TABLE_YEARS),
                                   np.arange(1, 13), np.arange(1, 32), indexing="ij")
    year, month, day = year.ravel(), month.ravel(), day.ravel()
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    valid = day <= _DAYS_IN_MONTH[month] + (leap & (month == 2))
    table = np.full(year.shape[0], np.iinfo(np.int32).min, dtype=np.int32)
    table[valid] = _days_since_epoch(year[valid], month[valid], day[valid])
    return table


_DATE_TABLE = _date_table()


def _parse_netflix_bytes(data: bytes) -> tuple[int, np.ndarray, np.ndarray, np.ndarray] | None:
    """Vectorised parse of a movie file in the Prize's exact layout, or ``None`` when it is not exactly that.

    The layout: ``MovieID:`` then lines ``CustomerID,Rating,YYYY-MM-DD`` with a customer id of 1–9 digits, a
    one-digit rating and a valid date, ``\\n`` line ends, no blank line. Anything else (``\\r``, spaces, decimal
    ratings, a bad line) returns ``None`` and the caller parses the file line by line, which either reads it or
    names the bad line.

    Returns:
        ``(movie, customer, rating, day)``: the movie id, (n,) int32 customer ids, (n,) float32 ratings and
        (n,) int32 days since 1970-01-01.
    """
    header_end = data.find(b"\n")
    if header_end < 0 or header_end + 1 == len(data):
        return None
    match = _NETFLIX_HEADER.match(data[:header_end].decode("latin-1"))
    if not match:
        return None
    body = np.frombuffer(data, dtype=np.uint8, offset=header_end + 1)
    if body[-1] != 10:
        body = np.append(body, np.uint8(10))
    ends = np.flatnonzero(body == 10)
    n = ends.shape[0]
    commas = np.flatnonzero(body == 44)
    # 2 commas and 2 dashes per line and digits everywhere else; their positions are checked below
    if (commas.shape[0] != 2 * n or np.count_nonzero(body == 45) != 2 * n
            or np.count_nonzero((body - np.uint8(48)) < 10) != body.shape[0] - 5 * n):
        return None
    first, second = commas[0::2], commas[1::2]
    starts = np.empty(n, dtype=np.int64)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    # with 2n commas in all, a line with more or fewer than two shifts a pair out of its line: caught here
    length = first - starts
    if ((length < 1) | (length > 9) | (second - first != 2) | (ends - second != 11)).any():
        return None
    date = body[second[:, None] + np.arange(1, 11)]  # (n, 10) bytes 'YYYY-MM-DD'
    if not ((date[:, 4] == 45) & (date[:, 7] == 45)).all():
        return None
    customer = np.zeros(n, dtype=np.int32)
    for k in range(int(length.max())):  # k-th digit from the right, where the id has one
        digit = (body[np.maximum(first - 1 - k, 0)] - np.uint8(48)).astype(np.int32)
        customer += np.where(length > k, digit, 0) * np.int32(10**k)
    rating = (body[first + 1] - np.uint8(48)).astype(np.float32)
    date = (date - np.uint8(48)).astype(np.int32)
    year = date[:, 0] * 1000 + date[:, 1] * 100 + date[:, 2] * 10 + date[:, 3]
    month = date[:, 5] * 10 + date[:, 6]
    day = date[:, 8] * 10 + date[:, 9]
    if ((year >= _TABLE_FIRST_YEAR) & (year < _TABLE_FIRST_YEAR + _TABLE_YEARS) & (month >= 1) & (month <= 12)
            & (day >= 1) & (day <= 31)).all():
        days = _DATE_TABLE[((year - _TABLE_FIRST_YEAR) * 12 + month - 1) * 31 + day - 1]
        if (days == np.iinfo(np.int32).min).any():
            return None
    else:
        days = _days_since_epoch(year, month, day)
        if days is None:
            return None
    return int(match.group(1)), customer, rating, days


def _parse_netflix_lines(path: Path, text: str) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """Line-by-line parse of a movie file in any layout the Prize's could be written in (spaces, ``\\r\\n``,
    blank lines, decimal ratings); raises :class:`DataFormatError` naming the first bad line.

    Returns:
        ``(movie, customer, rating, day)`` as :func:`_parse_netflix_bytes` (customer int64 when an id needs it).
    """
    lines = text.split("\n")
    if not text.strip():
        raise DataError(f"{path} is empty: a Netflix movie file starts with 'MovieID:'.")
    match = _NETFLIX_HEADER.match(lines[0])
    if not match:
        raise _format_error(path, 1, lines[0], "expected the movie header 'MovieID:'")
    movie = int(match.group(1))
    if not "\n".join(lines[1:]).strip():
        raise DataError(f"{path}: movie {movie} has no ratings.")
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
    if customer.size and customer.min() >= 0 and customer.max() <= np.iinfo(np.int32).max:
        customer = customer.astype(np.int32)
    return (movie, customer, np.asarray(ratings, dtype=np.float32),
            np.asarray(days, dtype="datetime64[D]").astype(np.int64).astype(np.int32))


def _read_netflix_file(path: Path) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """``(movie, customer, rating, day)`` of one movie file: the vectorised parse, else the line-by-line one."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"Rating file not found: {path}.") from None
    parsed = _parse_netflix_bytes(data)
    if parsed is not None:
        return parsed
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return _parse_netflix_lines(path, text.replace("\r\n", "\n") if "\r" in text else text)


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
        movie, customer, rating, day = _read_netflix_file(path)
        users.append(customer.astype(np.int64))
        items.append(np.full(customer.shape[0], movie, dtype=np.int64))
        ratings.append(rating)
        stamps.append(day.astype(np.int64) * 86_400)
    source = str(files[0].parent) if len(files) > 1 else str(files[0])
    return Interactions(
        user=np.concatenate(users), item=np.concatenate(items), rating=np.concatenate(ratings),
        timestamp=np.concatenate(stamps), source=source,
    )


_DENSE_ID_TABLE_MAX = 1 << 27  # customer ids up to this are compacted through a lookup table, not a sort


def read_netflix_csr(
    dir_or_files: str | os.PathLike | Iterable[str | os.PathLike],
    max_movies: int | None = None,
    min_rating: float | None = None,
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Stream Netflix Prize ``training_set/mv_*.txt`` files into a customers × movies int32 CSR.

    One file at a time is parsed (vectorised when it is in the Prize's exact layout, line by line otherwise) and
    only its customer ids are kept, as int32; the movie-major table is then transposed in one pass
    (``scipy.sparse`` counting sort). Peak memory grows by about 12 bytes a rating: about 1.3 GB for the full
    training set's 100,480,507 ratings, extrapolated from a 10M-rating fixture by
    ``benchmarks/bench_netflix_reader.py``.

    Args:
        dir_or_files: the ``training_set`` folder, one file, or a list of files.
        max_movies: read only the first ``max_movies`` files (sorted by name).
        min_rating: keep only ratings ``>= min_rating``.

    Returns:
        ``(X, customer_ids, movie_ids)``: X (n_customers, n_movies) CSR with int32 indices, sorted within rows,
        and int8 values 1, one stored entry per kept rating (a pair rated twice is stored twice); customer_ids
        (n_customers,) and movie_ids (n_movies,) int64, both increasing — the customers and movies with at
        least one kept rating.

    Raises:
        DataFormatError: a malformed header or line (file, line number and text are named).
        DataError: no files, an empty file, or no rating left after ``min_rating``.
    """
    files = _netflix_files(dir_or_files, max_movies)
    movies: list[int] = []
    customers: list[np.ndarray] = []
    for path in files:
        movie, customer, rating, _ = _read_netflix_file(path)
        if min_rating is not None:
            customer = customer[rating >= min_rating]
        movies.append(movie)
        customers.append(customer)
    where = str(files[0].parent) if len(files) > 1 else str(files[0])
    counts = np.array([c.shape[0] for c in customers], dtype=np.int64)
    nnz = int(counts.sum())
    if nnz == 0:
        raise DataError(f"{where}: no rating is left after min_rating={min_rating}.")
    movie_arr = np.asarray(movies, dtype=np.int64)
    order = np.argsort(movie_arr, kind="stable")  # movie-major rows in movie id order; repeated ids merge
    movie_ids, movie_row = np.unique(movie_arr[order], return_inverse=True)
    all_customers = np.concatenate([customers[i] for i in order])
    del customers
    row_counts = np.bincount(movie_row.ravel(), weights=counts[order], minlength=movie_ids.shape[0]).astype(np.int64)
    row_counts_nonzero = row_counts > 0
    movie_ids, row_counts = movie_ids[row_counts_nonzero], row_counts[row_counts_nonzero]
    low, high = int(all_customers.min()), int(all_customers.max())
    if low >= 0 and high < max(_DENSE_ID_TABLE_MAX, 4 * nnz):
        present = np.zeros(high + 1, dtype=bool)
        present[all_customers] = True
        customer_ids = np.flatnonzero(present).astype(np.int64)
        code = np.cumsum(present, dtype=np.int32)
        code -= 1
        del present
        all_customers = all_customers.astype(np.int32, copy=False)
        for start in range(0, nnz, 1 << 24):  # in place, a slice at a time: no second copy of the ids
            part = all_customers[start:start + (1 << 24)]
            part[:] = code[part]
        del code
    else:
        customer_ids, all_customers = np.unique(all_customers, return_inverse=True)
        customer_ids = customer_ids.astype(np.int64)
        all_customers = all_customers.ravel().astype(np.int32)
    indptr = np.zeros(movie_ids.shape[0] + 1, dtype=np.int64)
    np.cumsum(row_counts, out=indptr[1:])
    index_dtype = np.int32 if nnz < np.iinfo(np.int32).max else np.int64
    by_movie = sp.csr_matrix(
        (np.ones(nnz, dtype=np.int8), all_customers, indptr.astype(index_dtype)),
        shape=(movie_ids.shape[0], customer_ids.shape[0]),
    )
    del all_customers
    by_customer = by_movie.tocsc()  # counting-sort transpose: each customer's movies in increasing order
    del by_movie
    X = sp.csr_matrix((by_customer.data, by_customer.indices, by_customer.indptr),
                      shape=(customer_ids.shape[0], movie_ids.shape[0]))
    X.has_sorted_indices = True
    return X, customer_ids, movie_ids
