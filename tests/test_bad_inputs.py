"""Every bad input the kit has been tried with, and what the user sees: the cases behind docs/bad-inputs.md.

Each case feeds one bad input, asserts what must hold (the error type, nothing run or written, the exit status)
and returns the text the user sees. The tests compare that text with the case's row of ``docs/bad-inputs.md``,
so the table stays what the kit prints. After changing a message, regenerate the table (it runs every case,
the slow ones too)::

    PYTHONPATH=. python tests/test_bad_inputs.py --write

Paths in the texts are shown relative to placeholders: ``<tmp>`` (the case's scratch folder), ``<data>`` (the
data directory), ``<repo>`` (the checkout).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import shlex
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import scipy.sparse as sp

from infae_kit import paths
from infae_kit.errors import InfaeError

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "bad-inputs.md"
DATA = paths.data_dir()
HAS_PAPER_DATA = DATA is not None and (DATA / "magazine" / "index.npz").is_file()
HAS_ML100K = DATA is not None and (DATA / "ml-100k" / "u.data").is_file()


@dataclasses.dataclass(frozen=True)
class Case:
    """One bad input: ``run(tmp)`` feeds it, asserts what must hold and returns what the user sees."""

    id: str
    area: str
    tried: str
    run: Callable[[Path], str]
    slow: bool = False
    needs: str = ""  # "paper data" or "ml-100k": skipped without those files


CASES: list[Case] = []


def case(id: str, area: str, tried: str, *, slow: bool = False, needs: str = ""):
    def register(run):
        CASES.append(Case(id, area, tried, run, slow, needs))
        return run

    return register


def shown(exc: BaseException) -> str:
    """An exception as a user reads it: its type and message."""
    return f"{type(exc).__name__}: {exc}"


def raised(call: Callable[[], object], kind: type[BaseException] = InfaeError) -> BaseException:
    with pytest.raises(kind) as info:
        call()
    return info.value


def _magazine_copy(tmp: Path) -> Path:
    """A data directory holding a copy of the paper's magazine files."""
    folder = tmp / "data" / "magazine"
    folder.mkdir(parents=True)
    for name in ("total_data.hdf5", "index.npz"):
        shutil.copyfile(DATA / "magazine" / name, folder / name)
    return tmp / "data"


def _truncate(path: Path, keep: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@contextlib.contextmanager
def _env(**values):
    import os

    old = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = str(v)
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# ---------------------------------------------------------------------------------------------------------
# data files
# ---------------------------------------------------------------------------------------------------------
@case("hdf5-truncated", "data files", "`total_data.hdf5` cut to half its size, then `load_dataset(\"magazine\")`",
      needs="paper data")
def _hdf5_truncated(tmp):
    from infae_kit.data import load_dataset
    from infae_kit.errors import DataFormatError

    root = _magazine_copy(tmp)
    _truncate(root / "magazine" / "total_data.hdf5", 0.5)
    err = raised(lambda: load_dataset("magazine", data_dir=root), DataFormatError)
    assert err.path == root / "magazine" / "total_data.hdf5"
    return shown(err)


@case("npz-truncated", "data files", "`index.npz` cut to half its size, then `load_dataset(\"magazine\")`",
      needs="paper data")
def _npz_truncated(tmp):
    from infae_kit.data import load_dataset
    from infae_kit.errors import DataFormatError

    root = _magazine_copy(tmp)
    _truncate(root / "magazine" / "index.npz", 0.5)
    return shown(raised(lambda: load_dataset("magazine", data_dir=root), DataFormatError))


@case("npz-empty", "data files", "`index.npz` empty (0 bytes)", needs="paper data")
def _npz_empty(tmp):
    from infae_kit.data import load_dataset
    from infae_kit.errors import DataFormatError

    root = _magazine_copy(tmp)
    (root / "magazine" / "index.npz").write_bytes(b"")
    return shown(raised(lambda: load_dataset("magazine", data_dir=root), DataFormatError))


def _cached_magazine(tmp: Path) -> tuple[Path, Path]:
    """An empty data directory and a download cache whose magazine hdf5 is truncated."""
    empty = tmp / "no-data"
    empty.mkdir()
    cache = tmp / "cache"
    (cache / "magazine").mkdir(parents=True)
    for name in ("total_data.hdf5", "index.npz"):
        shutil.copyfile(DATA / "magazine" / name, cache / "magazine" / name)
    _truncate(cache / "magazine" / "total_data.hdf5", 0.5)
    return empty, cache


@case("cache-checksum-offline", "data files",
      "a truncated `total_data.hdf5` in the download cache, downloads off", needs="paper data")
def _cache_checksum_offline(tmp):
    from infae_kit.data import load_dataset
    from infae_kit.errors import ChecksumError

    empty, cache = _cached_magazine(tmp)
    with _env(INFAE_CACHE_DIR=cache, INFAE_DOWNLOAD=None):
        err = raised(lambda: load_dataset("magazine", data_dir=empty), ChecksumError)
    return shown(err)


@case("cache-checksum-refetch", "data files",
      "the same truncated cached file, downloads on (`download=True`), its source reachable", needs="paper data")
def _cache_checksum_refetch(tmp):
    from local_http import serve_folder

    from infae_kit.data import load_dataset, registry

    empty, cache = _cached_magazine(tmp)
    www = tmp / "www"
    www.mkdir()
    shutil.copyfile(DATA / "magazine" / "total_data.hdf5", www / "total_data.hdf5")
    spec = registry._REGISTRY["magazine"]
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("infae_kit.data.download")
    with serve_folder(www) as (base, hits):
        served = dataclasses.replace(spec.files["hdf5"], url=f"{base}/total_data.hdf5")
        registry._REGISTRY["magazine"] = dataclasses.replace(spec, files={**spec.files, "hdf5": served})
        logger.addHandler(handler)
        level = logger.level
        logger.setLevel(logging.INFO)
        try:
            with _env(INFAE_CACHE_DIR=cache, INFAE_DOWNLOAD=None):
                ds = load_dataset("magazine", data_dir=empty, download=True)
        finally:
            registry._REGISTRY["magazine"] = spec
            logger.removeHandler(handler)
            logger.setLevel(level)
    assert hits == ["/total_data.hdf5"] and ds.n_users == 3092
    assert (cache / "magazine" / "total_data.hdf5").read_bytes() == (www / "total_data.hdf5").read_bytes()
    warnings = [r.getMessage() for r in records if r.levelno >= logging.WARNING]
    return "log: " + " / ".join(warnings) + f" — then the dataset loads ({ds.n_users:,} users)"


# ---------------------------------------------------------------------------------------------------------
# readers and load_dataset's parameters
# ---------------------------------------------------------------------------------------------------------
@case("movielens-bad-id", "readers", "`read_movielens` on a `ratings.dat` whose line 2 has the movie id `x3`")
def _movielens_bad_id(tmp):
    from infae_kit.data import read_movielens
    from infae_kit.errors import DataFormatError

    path = tmp / "ratings.dat"
    path.write_text("1::1193::5::978300760\n1::x3::4::978302109\n2::1357::5::978298709\n")
    return shown(raised(lambda: read_movielens(path), DataFormatError))


@case("min-rating-not-a-number", "readers", "`load_dataset(\"ml-100k\", min_rating=\"x\")`", needs="ml-100k")
def _min_rating(tmp):
    from infae_kit.data import load_dataset
    from infae_kit.errors import ParameterError

    return shown(raised(lambda: load_dataset("ml-100k", min_rating="x"), ParameterError))


@case("seed-negative", "readers", "`load_dataset(\"ml-100k\", seed=-1)` (any dataset, any model: the same check)")
def _seed_negative(tmp):
    from infae_kit.data import load_dataset
    from infae_kit.errors import ParameterError

    return shown(raised(lambda: load_dataset("ml-100k", seed=-1), ParameterError))


@case("dataset-misspelt", "readers", "`load_dataset(\"magazin\")`")
def _dataset_misspelt(tmp):
    from infae_kit.data import load_dataset
    from infae_kit.errors import UnknownDatasetError

    return shown(raised(lambda: load_dataset("magazin"), UnknownDatasetError))


# ---------------------------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------------------------
@case("all-zero-train", "models",
      "`fit` on a train matrix without a single interaction (empty, stored zeros, or dense zeros), for each of "
      "∞-AE, EASE, PopRec, Bias-only, MF, NeuMF, LightGCN and MVAE")
def _all_zero_train(tmp):
    from infae_kit.errors import DataError
    from infae_kit.models.baselines import EASE, PopRec
    from infae_kit.models.competitors import make_competitor
    from infae_kit.models.infinite_ae import InfiniteAE

    makers = {"∞-AE": lambda: InfiniteAE(5.0), "EASE": lambda: EASE(10.0), "PopRec": PopRec,
              "bias": lambda: make_competitor("bias"),
              **{name: (lambda name=name: make_competitor(name, epochs=1))
                 for name in ("mf", "neumf", "lightgcn", "mvae")}}
    matrices = [sp.csr_matrix((6, 9), dtype=np.float32),
                sp.csr_matrix((np.zeros(3, np.float32), ([0, 1, 2], [0, 4, 8])), shape=(6, 9)),
                np.zeros((6, 9), dtype=np.float32)]
    messages = {shown(raised(lambda: make().fit(X), DataError)) for make in makers.values() for X in matrices}
    assert len(messages) == 1, messages  # one check, one message, for every model and every zero matrix
    return messages.pop()


# ---------------------------------------------------------------------------------------------------------
# list parameters (notebooks and runner)
# ---------------------------------------------------------------------------------------------------------
@case("list-not-a-number", "parameters", "`lambdas = \"1,x,5\"` in a notebook (`list_parameter`)")
def _list_not_a_number(tmp):
    from infae_kit.checks import list_parameter
    from infae_kit.errors import ParameterError

    return shown(raised(lambda: list_parameter("lambdas", "1,x,5"), ParameterError))


@case("list-negative", "parameters", "`lambdas = \"-1,5\"` in a notebook")
def _list_negative(tmp):
    from infae_kit.checks import list_parameter
    from infae_kit.errors import ParameterError

    return shown(raised(lambda: list_parameter("lambdas", "-1,5"), ParameterError))


# ---------------------------------------------------------------------------------------------------------
# the runner
# ---------------------------------------------------------------------------------------------------------
def _runner(tmp: Path, *args: str) -> tuple[int, str]:
    """``python -m infae_kit.runner ARGS`` in-process: exit status and what it printed (stderr and its log)."""
    from infae_kit import runner

    out, err = io.StringIO(), io.StringIO()
    records = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    quiet = logging.NullHandler()  # a root handler makes main's logging.basicConfig a no-op, here and under pytest
    logging.getLogger().addHandler(quiet)
    runner.log.addHandler(handler)
    level = runner.log.level
    runner.log.setLevel(logging.INFO)  # the level main sets up for the terminal
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = runner.main([*args, "--output-dir", str(tmp / "runs"), "--table", str(tmp / "results.md")])
    finally:
        runner.log.removeHandler(handler)
        runner.log.setLevel(level)
        logging.getLogger().removeHandler(quiet)
    return rc, "\n".join(line for line in [err.getvalue().strip(), *records] if line)


def _refused(tmp: Path, *args: str) -> str:
    rc, text = _runner(tmp, *args)
    assert rc == 2, text
    assert not (tmp / "runs").exists() and not (tmp / "results.md").exists()  # nothing ran, nothing written
    assert "Traceback" not in text
    return f"exit 2: {text}"


REFUSED_RUNS = {
    "runner-dataset-misspelt": ["--notebooks", "02", "--datasets", "magazin"],
    "runner-parameter-misspelt": ["--notebooks", "02", "--datasets", "magazine", "-p", "lamdbas", "1,5"],
    "runner-list-not-a-number": ["--notebooks", "02", "--datasets", "magazine", "-p", "lambdas", "1,x,5"],
    "runner-list-negative": ["--notebooks", "02", "--datasets", "magazine", "-p", "lambdas", "-1,5"],
    "runner-wrong-type": ["--notebooks", "02", "--datasets", "magazine", "-p", "depth", "deep"],
    "runner-unknown-sampler": ["--notebooks", "04", "--datasets", "magazine", "-p", "samplers", "user-rns,random"],
}
"""Runner command lines refused before any kernel starts (exit 2, nothing run or written)."""

for _id, _args in REFUSED_RUNS.items():
    case(_id, "runner", f"`python -m infae_kit.runner {shlex.join(_args)}`")(
        lambda tmp, args=tuple(_args): _refused(tmp, *args))


@case("runner-notebook-fails", "runner",
      "`python -m infae_kit.runner --notebooks 03 --datasets magazine -p budget 999999 -p preset ci`: more fake "
      "users than Magazine's "
      "3,092 users (the run starts; the kit's check stops it before NumPy's)", slow=True, needs="paper data")
def _runner_fails(tmp):
    with _env(INFAE_FIGURES_DIR=tmp / "figures"):
        rc, text = _runner(tmp, "--notebooks", "03", "--datasets", "magazine", "-p", "budget", "999999",
                           "-p", "preset", "ci")
    assert rc == 1, text
    assert (tmp / "runs" / "03_distill-magazine.failed.ipynb").is_file()
    assert "ParameterError" in text and "larger sample than population" not in text
    return f"exit 1: {text}"


# ---------------------------------------------------------------------------------------------------------
# the table
# ---------------------------------------------------------------------------------------------------------
def normalise(text: str, tmp: Path) -> str:
    """Machine-specific paths replaced by placeholders."""
    for path, name in ((tmp, "<tmp>"), (tmp.resolve(), "<tmp>"), (ROOT, "<repo>")):
        text = text.replace(str(path), name)
    if DATA is not None:
        text = text.replace(str(DATA), "<data>")
    return text


def _cell(text: str) -> str:
    """Text as one Markdown table cell: HTML-escaped, `|` escaped, line breaks as <br>."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
    return "<br>".join(line.rstrip() for line in text.strip().splitlines())


def row(c: Case, seen: str) -> str:
    return f"| `{c.id}` | {c.area} | {c.tried.replace('|', chr(92) + '|')} | {_cell(seen)} |"


REGENERATE = "regenerate: PYTHONPATH=. python tests/test_bad_inputs.py --write"

HEADER = """# Bad inputs and what the user sees

Every bad input the kit has been tried with, and what it answers: an error that names the file, parameter or
value and the fix, or a safe recovery. `tests/test_bad_inputs.py` feeds each one and fails when the kit's answer
differs from this table; `PYTHONPATH=. python tests/test_bad_inputs.py --write` regenerates the table. Paths are
shown as `<tmp>` (a scratch folder), `<data>` (the data directory) and `<repo>` (the checkout).

| case | area | what was tried | what the user sees |
| --- | --- | --- | --- |
"""


def run_case(c: Case) -> str:
    with tempfile.TemporaryDirectory(prefix=f"bad-input-{c.id}-") as scratch:
        tmp = Path(scratch)
        return normalise(c.run(tmp), tmp)


def _skip_reason(c: Case) -> str | None:
    if c.needs == "paper data" and not HAS_PAPER_DATA:
        return "the paper's magazine files are not in the data directory"
    if c.needs == "ml-100k" and not HAS_ML100K:
        return "ml-100k is not in the data directory"
    return None


def _doc_rows() -> dict[str, str]:
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("| `"):
            rows[line.split("`", 2)[1]] = line
    return rows


def test_the_table_lists_every_case_once():
    rows = _doc_rows()
    assert sorted(rows) == sorted(c.id for c in CASES), REGENERATE
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize(
    "c",
    [pytest.param(c, id=c.id, marks=[pytest.mark.slow, pytest.mark.notebook] if c.slow else []) for c in CASES],
)
def test_bad_input(c):
    reason = _skip_reason(c)
    if reason:
        pytest.skip(reason)
    seen = run_case(c)
    assert _doc_rows().get(c.id) == row(c, seen), (
        f"docs/bad-inputs.md is out of date for {c.id}; the kit now shows:\n{seen}\n"
        + REGENERATE
    )


def write_table() -> str:
    lines = []
    for c in CASES:
        reason = _skip_reason(c)
        if reason:
            raise SystemExit(f"cannot run {c.id}: {reason}")
        print(f"running {c.id} ...", file=sys.stderr, flush=True)
        lines.append(row(c, run_case(c)))
    return HEADER + "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # local_http
    if sys.argv[1:] != ["--write"]:
        raise SystemExit("usage: PYTHONPATH=. python tests/test_bad_inputs.py --write")
    from infae_kit.io_utils import atomic_write_text

    atomic_write_text(DOC, write_table())
    print(f"wrote {DOC}")
