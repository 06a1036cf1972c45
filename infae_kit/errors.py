"""Exceptions raised by infae_kit.

Every error the kit raises on bad input derives from :class:`InfaeError` and says what is wrong and how to
fix it. They also derive from the closest built-in exception, so ``except ValueError`` keeps working.
"""

from __future__ import annotations

import os

__all__ = [
    "InfaeError",
    "DataError",
    "DataFormatError",
    "DatasetNotFoundError",
    "UnknownDatasetError",
    "ChecksumError",
    "MemoryBudgetError",
    "NumericalError",
    "ParameterError",
]


class InfaeError(Exception):
    """Base class of every error raised deliberately by infae_kit."""


class DataError(InfaeError, ValueError):
    """A dataset is unusable: empty, too small, inconsistent."""


class DataFormatError(DataError):
    """A data file cannot be parsed (names the file and the line or value).

    Attributes:
        path: the file, when the error is about one file as a whole (damaged, truncated), else ``None``.
    """

    def __init__(self, message: str, *, path: str | os.PathLike | None = None) -> None:
        super().__init__(message)
        self.path = path


class DamagedFileError(DataFormatError):
    """A file the kit wrote earlier (a cache entry, a checkpoint) is truncated or unreadable.

    Attributes:
      path: the damaged file, so that the caller can set it aside (:func:`infae_kit.io_utils.set_aside`).
      reason: what is wrong with it.
    """

    def __init__(self, path, reason: str):
        super().__init__(f"{path} is damaged ({reason})")
        self.path = path
        self.reason = reason


class DatasetNotFoundError(InfaeError, FileNotFoundError):
    """A dataset's files are not where the kit looks for them (names the file, location and source)."""


class UnknownDatasetError(InfaeError, KeyError):
    """A dataset name is not in the registry."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class ChecksumError(InfaeError, ValueError):
    """A downloaded file does not have the expected checksum."""


class MemoryBudgetError(InfaeError, MemoryError):
    """An allocation would not fit in the memory available."""


class NumericalError(InfaeError, ArithmeticError):
    """A linear-algebra step failed and could not be recovered."""


class ParameterError(InfaeError, ValueError):
    """A parameter has an invalid value or an unknown name."""
