"""Named datasets: where their files are looked for, where they come from, and how they are loaded.

Resolution of a dataset's files: the explicit ``data_dir`` argument, else :func:`infae_kit.paths.data_dir`
(``$INFAE_DATA_DIR`` or ``../shared/data``), then the download cache ``infae_kit.paths.cache_dir()/<name>/``.
When a file is missing and ``download=True`` (or ``$INFAE_DOWNLOAD=1``), it is fetched into the cache and
verified against its checksum; otherwise :class:`~infae_kit.errors.DatasetNotFoundError` names the file, the
places searched, the source and the fix.
"""

from __future__ import annotations

import difflib
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from infae_kit import paths
from infae_kit.checks import check_seed, is_real, positive_int
from infae_kit.data.dataset import RecDataset, build_rec_dataset
from infae_kit.data.fractal import FRACTAL_SPECS
from infae_kit.errors import (
    ChecksumError,
    DataError,
    DataFormatError,
    DatasetNotFoundError,
    ParameterError,
    UnknownDatasetError,
)

__all__ = [
    "DOWNLOAD_ENV",
    "NETFLIX_ENV",
    "FileSource",
    "DatasetSpec",
    "list_datasets",
    "check_dataset_name",
    "dataset_info",
    "load_dataset",
]

logger = logging.getLogger(__name__)

DOWNLOAD_ENV = "INFAE_DOWNLOAD"
NETFLIX_ENV = "INFAE_NETFLIX_DIR"

_INFAE_COMMIT = "be89111b2ee143540ccc1b43591a7a420cf00450"
_INFAE_RAW = f"https://raw.githubusercontent.com/noveens/infinite_ae_cf/{_INFAE_COMMIT}/data"
_DTCDR_COMMIT = "11a1dc6fda5148c8b1ce412ed4e2f0c4f124e2d0"
_DTCDR_RAW = f"https://raw.githubusercontent.com/fengzhu1/GA-DTCDR/{_DTCDR_COMMIT}/Data"
_MLLS_COMMIT = "fcfcbe277da4255f5f3323df824a41ed8b45542f"

_CITE_ML = (
    "F. Maxwell Harper and Joseph A. Konstan. The MovieLens Datasets: History and Context. "
    "ACM TiiS 5(4), 2015. https://doi.org/10.1145/2827872"
)
_CITE_PAPER = (
    "Noveen Sachdeva, Mehak Preet Dhaliwal, Carole-Jean Wu and Julian McAuley. Infinite Recommendation "
    "Networks: A Data-Centric Approach. NeurIPS 2022."
)
_CITE_DTCDR = (
    "Feng Zhu, Yan Wang, Chaochao Chen, Guanfeng Liu and Xiaolin Zheng. A Graphical and Attentional Framework "
    "for Dual-Target Cross-Domain Recommendation. IJCAI 2020; and DTCDR, CIKM 2019."
)
_LICENCE_ML_NO_REDIST = (
    "GroupLens terms: research use only, acknowledge the dataset, no endorsement, no commercial use, "
    "'may not redistribute the data without separate permission'. Keep out of public commits."
)


@dataclass(frozen=True)
class FileSource:
    """One file of a dataset.

    Attributes:
        filename: name of the file (also its name in the download cache folder).
        locations: where it is looked for, relative to the data directory, in order.
        url: public download URL (``None`` when it cannot be downloaded).
        checksum: ``(kind, hexdigest)`` with kind ``'sha256'`` or ``'git_blob_sha1'``.
        extract_member: zip member to extract when ``url`` is an archive.
        origin: human-readable description of the source (repository, commit, path, blob, size).
    """

    filename: str
    locations: tuple[str, ...]
    url: str | None = None
    checksum: tuple[str, str] | None = None
    extract_member: str | None = None
    origin: str = ""


@dataclass(frozen=True)
class DatasetSpec:
    """A registry entry.

    Attributes:
        name: registry name.
        kind: ``'preprocessed'`` (paper's hdf5 + index), ``'raw'`` (rating file + paper split with ``seed``),
            ``'user-supplied'`` (a path you provide; no download), ``'fractal'`` (generated from another
            dataset by :mod:`infae_kit.data.fractal` and cached), or ``'synthetic'``.
        description: what the data is.
        files: role → FileSource (roles: ``hdf5``/``index`` for preprocessed, ``ratings`` for raw).
        reader: how raw files are parsed (``'movielens'``, ``'tsv-user-item-rating'``, ``'netflix'``).
        citation: what to cite.
        licence: licence / terms note.
        options: accepted ``**options`` of :func:`load_dataset` with their meaning.
        how_to_obtain: where to get the data when it cannot be downloaded automatically.
    """

    name: str
    kind: str
    description: str
    files: dict[str, FileSource] = field(default_factory=dict)
    reader: str | None = None
    citation: str = ""
    licence: str = ""
    options: dict[str, str] = field(default_factory=dict)
    how_to_obtain: str = ""


def _preprocessed(name: str, description: str, sha_hdf5: str, sha_index: str, citation: str, licence: str) -> DatasetSpec:
    return DatasetSpec(
        name=name,
        kind="preprocessed",
        description=description,
        files={
            "hdf5": FileSource(
                "total_data.hdf5", (f"{name}/total_data.hdf5",), f"{_INFAE_RAW}/{name}/total_data.hdf5",
                ("sha256", sha_hdf5), origin=f"GitHub noveens/infinite_ae_cf commit {_INFAE_COMMIT}, data/{name}/total_data.hdf5",
            ),
            "index": FileSource(
                "index.npz", (f"{name}/index.npz",), f"{_INFAE_RAW}/{name}/index.npz", ("sha256", sha_index),
                origin=f"GitHub noveens/infinite_ae_cf commit {_INFAE_COMMIT}, data/{name}/index.npz",
            ),
        },
        citation=citation,
        licence=licence,
        options={"repeats": "'collapse' (default, binary relevance) or 'count' (repeated pairs add up, as the paper's code)"},
    )


def _douban_domain(domain: str, sha: str, blob: str) -> DatasetSpec:
    return DatasetSpec(
        name=f"douban-{domain}",
        kind="raw",
        description=(
            f"Douban {domain} ratings of the DTCDR / GA-DTCDR release (filtered version; tab-separated "
            "user item rating, no timestamps), split with the paper's per-user protocol. Not the paper's "
            "Douban (movies)."
        ),
        files={
            "ratings": FileSource(
                "ratings.dat", (f"douban/dtcdr_ga-dtcdr/douban_{domain}/ratings.dat", f"douban-{domain}/ratings.dat"),
                f"{_DTCDR_RAW}/douban_{domain}/ratings.dat", ("sha256", sha),
                origin=f"GitHub fengzhu1/GA-DTCDR commit {_DTCDR_COMMIT}, Data/douban_{domain}/ratings.dat (blob {blob})",
            )
        },
        reader="tsv-user-item-rating",
        citation=_CITE_DTCDR,
        licence="Repository licence GNU GPL v3; the authors ask users of the dataset to cite DTCDR or GA-DTCDR.",
        options={"min_rating": "keep only ratings >= this value before splitting (default: all)"},
    )


_REGISTRY: dict[str, DatasetSpec] = {}


def _register(spec: DatasetSpec) -> None:
    _REGISTRY[spec.name] = spec


_register(_preprocessed(
    "magazine",
    "Amazon Magazine Subscriptions (2018), as preprocessed and split by the paper's authors "
    "(3,092 users × 1,305 items, 12,217 unique interactions after removing users with < 3 ratings).",
    "c3f72d5667dd24a893d249f5e3e68b3e4a9c8bced5f29ab1a52e02c870d660e7",
    "4172fe7aaf280684963f2d39edd99ff85e48a44458f6478f1bd2a4addd5a4fc4",
    "Jianmo Ni, Jiacheng Li and Julian McAuley. Justifying recommendations using distantly-labeled reviews and "
    "fine-grained aspects. EMNLP-IJCNLP 2019. Preprocessing: " + _CITE_PAPER,
    "infinite_ae_cf is MIT-licensed; the Amazon Review Data terms are unverified: treat as research-only, do "
    "not redistribute.",
))
_register(_preprocessed(
    "ml-1m",
    "MovieLens 1M as preprocessed and split by the paper's authors (6,040 users × 3,706 items, 1,000,209 "
    "ratings; no timestamps).",
    "94aa04b955ff4d3a4bced04c245a1afdba56536b9ec3b7001cde3305134b34b3",
    "de473c335625a0bdb7d011e831426bd140dc205a078bb35cefc83e8ea29a5bd8",
    _CITE_ML + " Preprocessing: " + _CITE_PAPER,
    _LICENCE_ML_NO_REDIST,
))
_register(DatasetSpec(
    name="douban",
    kind="preprocessed",
    description=(
        "Douban movies as preprocessed and split by the paper's authors (about 2.6k users × 34k items, 1.28M "
        "ratings). The split labels are available; the ratings file (> 4 MiB) must be downloaded or supplied."
    ),
    files={
        "hdf5": FileSource(
            "total_data.hdf5", ("douban/total_data.hdf5", "douban/paper_split/total_data.hdf5"),
            f"{_INFAE_RAW}/douban/total_data.hdf5", ("git_blob_sha1", "b44e87d1ba114c4f809bf8ff43c211eceb1b5d99"),
            origin=(
                f"GitHub noveens/infinite_ae_cf commit {_INFAE_COMMIT}, path data/douban/total_data.hdf5, git blob "
                "sha1 b44e87d1ba114c4f809bf8ff43c211eceb1b5d99 (> 4 MiB)"
            ),
        ),
        "index": FileSource(
            "index.npz", ("douban/paper_split/index.npz", "douban/index.npz"), f"{_INFAE_RAW}/douban/index.npz",
            ("sha256", "a3442660a746ea5eb274ab9ff563d215fd1e4dc993bec7471ced32b8a9aa23f9"),
            origin=f"GitHub noveens/infinite_ae_cf commit {_INFAE_COMMIT}, data/douban/index.npz (blob 447c6e3f…)",
        ),
    },
    citation="Douban movie ratings as used by DTCDR/GA-DTCDR; " + _CITE_DTCDR + " Preprocessing: " + _CITE_PAPER,
    licence="infinite_ae_cf is MIT-licensed; data terms are those of the DTCDR release (cite DTCDR / GA-DTCDR).",
    options={"repeats": "'collapse' (default, binary relevance) or 'count' (repeated pairs add up, as the paper's code)"},
))
_register(DatasetSpec(
    name="ml-100k",
    kind="raw",
    description="MovieLens 100K (943 users, 1,682 movies, 100,000 ratings with timestamps), paper split with seed.",
    files={
        "ratings": FileSource(
            "u.data", ("ml-100k/u.data",), "https://files.grouplens.org/datasets/movielens/ml-100k.zip",
            ("sha256", "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"),
            extract_member="ml-100k/u.data", origin="GroupLens ml-100k.zip, member ml-100k/u.data",
        )
    },
    reader="movielens",
    citation=_CITE_ML,
    licence=_LICENCE_ML_NO_REDIST,
    options={"min_rating": "keep only ratings >= this value before splitting (default: all)"},
))
_register(DatasetSpec(
    name="ml-latest-small",
    kind="raw",
    description=(
        "MovieLens ml-latest-small, October 2016 snapshot (671 users, 9,066 movies, 100,004 ratings with "
        "timestamps), paper split with seed. The current GroupLens zip is a different (2018) version."
    ),
    files={
        "ratings": FileSource(
            "ratings.csv", ("ml-latest-small/ratings.csv",),
            f"https://raw.githubusercontent.com/SimplCoder/RecommadationSystems/{_MLLS_COMMIT}/ml-latest-small/ratings.csv",
            ("sha256", "b4239649fbf90ebf405c56c3ae1d929d9e7c86fc1a3a80cbef1c884df593ef73"),
            origin=f"GitHub SimplCoder/RecommadationSystems commit {_MLLS_COMMIT}, ml-latest-small/ratings.csv",
        )
    },
    reader="movielens",
    citation=_CITE_ML,
    licence="GroupLens terms: research use; may be redistributed under the same licence conditions; no commercial use.",
    options={"min_rating": "keep only ratings >= this value before splitting (default: all)"},
))
_register(_douban_domain("book", "cc1c191fabe2e05e95cd6dbe7be19d13ed3e1b27b80be2050e4f6b4e40945ddd",
                         "ed495e9592b0bb9848742c26e73a70ee962f0298"))
_register(_douban_domain("music", "40944be25f79e6cf80ab9acf0dca8f4b9b9fe2724a068702294608883ad46775",
                         "99d5bd3570493a27c45dac47eb2fcf7271260ed4"))
_NETFLIX_OBTAIN = (
    "The Netflix Prize data (training_set/mv_*.txt, about 2 GB) cannot be redistributed. Obtain it from an "
    "archived copy of the Netflix Prize release (e.g. the Kaggle 'netflix-prize-data' page or academic "
    "torrents) under its terms, then pass path=..., set $INFAE_NETFLIX_DIR, or put it at "
    "<data_dir>/netflix/training_set/."
)
_register(DatasetSpec(
    name="netflix",
    kind="user-supplied",
    description=(
        "Netflix Prize training set (480,189 users, 17,770 movies, 100,480,507 ratings), paper split with seed. "
        "Streamed into an int32 CSR (read_netflix_csr): about 1.3 GB at full size; no long interaction table "
        "(read_netflix_training_set gives one, with dates)."
    ),
    files={"ratings": FileSource("training_set", ("netflix/training_set",), origin="Netflix Prize (2006)")},
    reader="netflix",
    citation="James Bennett and Stan Lanning. The Netflix Prize. KDD Cup and Workshop 2007.",
    licence="Netflix Prize terms: research use only, no redistribution, no commercial use.",
    options={
        "path": f"the training_set folder (else ${NETFLIX_ENV}, else <data_dir>/netflix/training_set)",
        "max_movies": "read only the first N movie files",
        "min_rating": "keep only ratings >= this value before splitting",
    },
    how_to_obtain=_NETFLIX_OBTAIN,
))
_register(DatasetSpec(
    name="netflix-sample",
    kind="user-supplied",
    description="Three Netflix Prize movie files (869 ratings) in the training_set layout: a parser fixture only.",
    files={"ratings": FileSource("training_set_format", ("netflix-sample/training_set_format",),
                                 origin="GitHub brianhuey/Netflix (3 files), re-rendered in training_set layout")},
    reader="netflix",
    citation="James Bennett and Stan Lanning. The Netflix Prize. KDD Cup and Workshop 2007.",
    licence="Netflix Prize terms: research use only, no redistribution.",
    options={"path": "override the folder", "max_movies": "read only the first N movie files"},
    how_to_obtain="Part of the project's shared data folder (netflix-sample/training_set_format).",
))
_CITE_FRACTAL = (
    "Francois Belletti, Karthik Lakshmanan, Walid Krichene, Yi-Fan Chen and John Anderson. Scalable Realistic "
    "Recommendation Datasets through Fractal Expansions. arXiv:1901.08910, 2019. Source data: " + _CITE_ML
)
for _fractal in FRACTAL_SPECS.values():
    _register(DatasetSpec(
        name=_fractal.name,
        kind="fractal",
        description=_fractal.description,
        citation=_CITE_FRACTAL,
        licence="Derived from ML-1M: " + _LICENCE_ML_NO_REDIST + " Generated locally; never commit it.",
        options={"cache": "read and write the cached expansion under <cache_dir>/fractal (default True)"},
        how_to_obtain=f"Generated from {_fractal.source!r} on first use (make netflix-shape builds both sizes).",
    ))
_register(DatasetSpec(
    name="synthetic",
    kind="synthetic",
    description="Latent-factor + Zipf-popularity synthetic data (see make_synthetic), paper split with seed.",
    citation="(synthetic; no citation)",
    licence="generated locally",
    options={k: "see make_synthetic" for k in (
        "n_users", "n_items", "n_factors", "zipf_a", "mean_interactions", "affinity_scale", "activity_sigma")},
))


def list_datasets() -> list[str]:
    """Names of the registered datasets."""
    return list(_REGISTRY)


def _spec(name: str) -> DatasetSpec:
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownDatasetError(
            f"Unknown dataset {name!r}.{hint} Known datasets: {', '.join(_REGISTRY)}."
        ) from None


def check_dataset_name(name: str) -> str:
    """``name`` when it is registered; otherwise :class:`UnknownDatasetError` with the closest name.

    Cheap (no file is opened): the runner checks names with it before starting any notebook.
    """
    return _spec(name).name


def dataset_info(name: str) -> dict[str, Any]:
    """The registry entry of ``name`` as a plain dict (kind, files and locations, sources, citation, licence)."""
    return asdict(_spec(name))


def _resolve_data_dir(data_dir: str | os.PathLike | None) -> Path | None:
    if data_dir is not None:
        return Path(data_dir).expanduser()
    return paths.data_dir()


def _download_requested(download: bool) -> bool:
    return bool(download) or os.environ.get(DOWNLOAD_ENV, "").strip().lower() in ("1", "true", "yes")


def _locate(spec: DatasetSpec, role: str, data_dir: Path | None, download: bool) -> Path:
    """Path of one file of a dataset, downloading it into the cache if allowed."""
    from infae_kit.data.download import fetch_file

    source = spec.files[role]
    searched = [data_dir / loc for loc in source.locations] if data_dir is not None else []
    cached = paths.cache_dir() / spec.name / source.filename
    if source.url:  # only downloadable files can be in the cache
        searched.append(cached)
    for candidate in searched:
        if candidate.exists():
            if candidate == cached:
                return _verified_cache_file(spec, source, cached, download)
            return candidate
    if download and source.url:
        return fetch_file(source.url, cached, source.checksum, extract_member=source.extract_member)
    where = "\n".join(f"  - {p}" for p in searched)
    no_dir = "" if data_dir is not None else (
        f"\n(No data directory: ${paths.DATA_DIR_ENV} is unset and ../shared/data does not exist.)"
    )
    if source.url:
        checksum = f" ({source.checksum[0]} {source.checksum[1]})" if source.checksum else ""
        fix = (
            f"Fix: put {source.filename} at one of the locations above, or set ${paths.DATA_DIR_ENV} to a folder "
            f"holding {source.locations[0]}, or call load_dataset({spec.name!r}, download=True) (or set "
            f"${DOWNLOAD_ENV}=1) to download it into {cached.parent}."
        )
        src = f"Source: {source.origin or source.url}\n  URL: {source.url}{checksum}"
    else:
        fix = spec.how_to_obtain or f"Fix: put {source.filename} at one of the locations above."
        src = f"Source: {source.origin}"
    raise DatasetNotFoundError(
        f"Dataset {spec.name!r}: file {source.filename} not found. Searched:\n{where}{no_dir}\n{src}\n{fix}"
    )


def _verified_cache_file(spec: DatasetSpec, source: FileSource, cached: Path, download: bool) -> Path:
    """A file of the download cache, used only once its checksum matches the registry's.

    A file that does not match (truncated by an interrupted copy, edited, from another release) is fetched
    again when downloads are on (the damaged file is replaced only by a verified download); otherwise the
    error names the file, both checksums and the fix.
    """
    from infae_kit.data.download import fetch_file, file_checksum

    if source.checksum is None:
        return cached
    if download:  # fetch_file checks the cached file first and downloads only on a mismatch
        return fetch_file(source.url, cached, source.checksum, extract_member=source.extract_member)
    kind, expected = source.checksum
    actual = file_checksum(cached, kind)
    if actual == expected.lower():
        return cached
    raise ChecksumError(
        f"Dataset {spec.name!r}: the cached file {cached} ({cached.stat().st_size:,} bytes) has {kind} {actual}, "
        f"not the expected {expected}: it is damaged or incomplete (an interrupted download or copy?). Fix: "
        f"call load_dataset({spec.name!r}, download=True) (or set ${DOWNLOAD_ENV}=1) to fetch it again from "
        f"{source.url} (the file is replaced only once the new copy is verified), or delete it and put a "
        f"complete copy of {source.filename} in the data directory."
    )


def _damaged_file_error(spec: DatasetSpec, err: DataFormatError) -> DataFormatError:
    """``err`` (a file of ``spec`` that cannot be parsed) with where a complete copy comes from."""
    from infae_kit.data.download import file_checksum

    path = Path(err.path) if err.path is not None else None
    source = next((s for s in spec.files.values() if path is not None and path.name == s.filename), None)
    if source is None or source.url is None:
        return err
    hint = f"\nSource of a complete copy: {source.origin or source.url}\n  URL: {source.url}"
    if source.checksum is not None:
        kind, expected = source.checksum
        actual = file_checksum(path, kind)
        verdict = "matches" if actual == expected.lower() else f"differs: {actual}"
        hint += f"\n  expected {kind} {expected}; this file's {verdict}"
    hint += (f"\nOr call load_dataset({spec.name!r}, download=True) with the damaged file moved out of the data "
             "directory: it is then fetched into the download cache and verified.")
    return DataFormatError(f"{err}{hint}", path=path)


def _take_options(spec: DatasetSpec, options: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        raise ParameterError(
            f"load_dataset({spec.name!r}) got unknown option(s) {unknown}; accepted: {sorted(spec.options) or 'none'}."
        )
    opts = dict(options)
    if opts.get("min_rating") is not None and not is_real(opts["min_rating"]):
        raise ParameterError(
            f"load_dataset({spec.name!r}): min_rating must be a number (only ratings >= it are kept, e.g. 4), got "
            f"{opts['min_rating']!r}."
        )
    if opts.get("max_movies") is not None:
        opts["max_movies"] = positive_int("max_movies", opts["max_movies"])
    return opts


def load_dataset(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    download: bool = False,
    seed: int = 42,
    validation: str = "paper",
    **options: Any,
) -> RecDataset:
    """Load a registered dataset as a :class:`RecDataset`.

    Args:
        name: a name from :func:`list_datasets`.
        data_dir: data directory (default :func:`infae_kit.paths.data_dir`).
        download: fetch missing files into the cache (also enabled by ``$INFAE_DOWNLOAD=1``).
        seed: split seed for raw, user-supplied and synthetic datasets, and the expansion and split seed of the
            fractal ones (the preprocessed ones have the paper's fixed split and ignore it; their ``seed`` is
            ``None``).
        validation: ``"paper"`` (default: the split as it is, the paper's protocol) or ``"holdout"``: every user
            without a validation item and with at least two train items gets one train item, drawn with
            ``seed``, moved into validation (:func:`~infae_kit.data.holdout.with_validation_holdout`; the test
            pass is unchanged).
        **options: dataset-specific options (see ``dataset_info(name)['options']``).

    Returns:
        RecDataset.

    Raises:
        UnknownDatasetError: unknown name (known names and the closest match are listed).
        DatasetNotFoundError: a file is missing (file, places searched, source and fix are named).
        ParameterError: unknown option, a seed that is not an integer ≥ 0, a non-numeric ``min_rating``, an
            unknown ``validation``.
        ChecksumError: a file of the download cache does not match its checksum and downloads are off.
        DataFormatError: a file that cannot be parsed (damaged, truncated): names it and where a good copy is.
    """
    from infae_kit.data.holdout import apply_validation_protocol, check_validation_protocol

    spec = _spec(name)
    seed = check_seed(seed)
    validation = check_validation_protocol(validation)
    opts = _take_options(spec, options)
    try:
        data = _load(spec, opts, data_dir, download, seed)
    except DataFormatError as err:
        if err.path is None:
            raise
        raise _damaged_file_error(spec, err) from None
    return apply_validation_protocol(data, validation, seed=seed)


def _load(spec: DatasetSpec, opts: dict[str, Any], data_dir, download: bool, seed: int) -> RecDataset:
    name = spec.name
    root = _resolve_data_dir(data_dir)
    want_download = _download_requested(download)
    if spec.kind == "synthetic":
        from infae_kit.data.synthetic import make_synthetic

        table = make_synthetic(seed=seed, **opts)
        return build_rec_dataset(table, name=name, seed=seed)
    if spec.kind == "fractal":
        from infae_kit.data.fractal import fractal_dataset

        fractal = FRACTAL_SPECS[name]
        source = load_dataset(fractal.source, data_dir=data_dir, download=download)
        return fractal_dataset(fractal, source, seed=seed, cache=bool(opts.get("cache", True)))
    if spec.kind == "preprocessed":
        from infae_kit.data.preprocessed import load_preprocessed

        index = _locate(spec, "index", root, want_download)
        hdf5 = _locate(spec, "hdf5", root, want_download)
        return load_preprocessed(hdf5, index, name=name, **opts)

    from infae_kit.data.split import split_per_user

    min_rating = opts.pop("min_rating", None)
    if spec.reader == "netflix":
        from infae_kit.data.dataset import rec_dataset_from_csr
        from infae_kit.data.readers import read_netflix_csr
        from infae_kit.data.split import split_labels_csr

        path = opts.pop("path", None) or (os.environ.get(NETFLIX_ENV) if name == "netflix" else None)
        if path is None:
            path = _locate(spec, "ratings", root, False)
        elif not Path(path).exists():
            raise DatasetNotFoundError(f"Dataset {name!r}: {path} does not exist. {spec.how_to_obtain}")
        X, customer_ids, movie_ids = read_netflix_csr(path, max_movies=opts.pop("max_movies", None),
                                                      min_rating=min_rating)
        labels = split_labels_csr(X, seed)
        return rec_dataset_from_csr(X, labels, name=name, user_ids=customer_ids, item_ids=movie_ids, seed=seed,
                                    source=str(path))
    else:
        path = _locate(spec, "ratings", root, want_download)
        if spec.reader == "movielens":
            from infae_kit.data.readers import read_movielens

            table = read_movielens(path)
        else:
            from infae_kit.data.readers import read_delimited

            table = read_delimited(path, sep="\t", columns=("user", "item", "rating"))
    if min_rating is not None:
        if table.rating is None:
            raise DataError(f"Dataset {name!r} has no ratings; min_rating cannot be applied.")
        table = table.subset(table.rating >= min_rating)
    labelled = split_per_user(table, seed)
    return build_rec_dataset(labelled, name=name, seed=seed, source=str(path))
