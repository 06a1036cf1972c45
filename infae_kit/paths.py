"""Where the kit reads data and writes caches and figures.

* Data directory: ``$INFAE_DATA_DIR`` if set, else ``<repo>/../shared/data`` when it exists.
* Download cache: ``$INFAE_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/infae_kit`` (``~/.cache/infae_kit``).
* Figures: ``$INFAE_FIGURES_DIR`` if set, else ``<repo>/figures``.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "DATA_DIR_ENV",
    "CACHE_DIR_ENV",
    "FIGURES_DIR_ENV",
    "RUNS_DIR_ENV",
    "repo_root",
    "data_dir",
    "cache_dir",
    "figures_dir",
    "runs_dir",
    "output_path",
]

DATA_DIR_ENV = "INFAE_DATA_DIR"
CACHE_DIR_ENV = "INFAE_CACHE_DIR"
FIGURES_DIR_ENV = "INFAE_FIGURES_DIR"


def repo_root() -> Path:
    """The checkout this package lives in (the parent of the ``infae_kit`` folder)."""
    return Path(__file__).resolve().parent.parent


def data_dir() -> Path | None:
    """The data directory, or ``None`` when neither ``$INFAE_DATA_DIR`` nor ``../shared/data`` exists.

    An explicitly set ``$INFAE_DATA_DIR`` is returned even if it does not exist yet (loaders then say so).
    """
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser().resolve()
    default = repo_root().parent / "shared" / "data"
    return default.resolve() if default.is_dir() else None


def cache_dir() -> Path:
    """The download cache directory (created on first use by the downloader)."""
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return (base / "infae_kit").resolve()


def figures_dir() -> Path:
    """Where reproduced figures and tables are written."""
    env = os.environ.get(FIGURES_DIR_ENV)
    return Path(env).expanduser().resolve() if env else repo_root() / "figures"


RUNS_DIR_ENV = "INFAE_RUNS_DIR"


def runs_dir() -> Path:
    """Where notebook runs write their result JSON by default: ``$INFAE_RUNS_DIR`` or ``<repo>/runs``."""
    env = os.environ.get(RUNS_DIR_ENV)
    return Path(env).expanduser().resolve() if env else repo_root() / "runs"


def output_path(value: str | os.PathLike | None, default: Path) -> Path:
    """A notebook's output folder parameter: empty means the kit's default, anything else is used as given.

    Notebooks default ``output_dir`` and ``figures_dir`` to ``""`` so that they write to the repository's
    ``runs/`` and ``figures/`` whatever folder papermill or JupyterLab runs them from.
    """
    return default if value in (None, "") else Path(value).expanduser().resolve()
