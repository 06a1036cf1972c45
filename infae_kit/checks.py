"""Input checks shared by every module of the kit: one home for each, one error type for each kind of mistake.

Every check raises a :class:`~infae_kit.errors.InfaeError` subclass whose message names the value, what was
expected and how to fix it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable, Mapping, TypeVar

import numpy as np
import scipy.sparse as sp

from infae_kit.errors import DataError, ParameterError

__all__ = [
    "MatrixLike",
    "is_int",
    "is_real",
    "check_interactions",
    "binary_interactions",
    "check_fraction",
    "check_seed",
    "as_rng",
    "positive_int",
    "positive_float",
    "non_negative_float",
    "fraction",
    "parse_list",
    "LIST_PARAMETERS",
    "list_parameter",
    "DictConfig",
]

MatrixLike = sp.spmatrix | sp.sparray | np.ndarray
"""A ``(users, items)`` interaction matrix as the kit takes it: scipy.sparse in any format, or a dense 2-D array."""

_Config = TypeVar("_Config", bound="DictConfig")


def is_int(value: Any) -> bool:
    """True for Python and NumPy integers (``bool`` excluded)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """True for finite Python and NumPy real numbers (``bool`` excluded)."""
    return (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
            and math.isfinite(value))


def check_interactions(X: MatrixLike, name: str = "X", n_items: int | None = None, *,
                       require_interactions: bool = False) -> sp.csr_matrix:
    """Validate a users × items interaction matrix and return it as csr.

    Args:
        X: scipy.sparse matrix or dense 2-D array (users × items), finite non-negative values.
        name: what to call it in error messages.
        n_items: if given, the required number of columns (the fitted model's items).
        require_interactions: also refuse a matrix whose every value is 0 (stored zeros included): a model
            fitted on it has nothing to learn from and would rank items by their index.

    Returns:
        A csr matrix (the input itself when it already is csr; dense input is converted).

    Raises:
        DataError: not 2-D, no rows or columns, NaN/inf or negative values, wrong number of columns, no
            interaction at all when ``require_interactions``.
    """
    if sp.issparse(X):
        if X.ndim != 2:
            raise DataError(f"{name} must be 2-D (users × items), got shape {X.shape}.")
        csr = X if X.format == "csr" else X.tocsr()
        values = csr.data
    else:
        arr = np.asarray(X)
        if arr.ndim != 2:
            raise DataError(f"{name} must be a 2-D users × items matrix, got shape {arr.shape}.")
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise DataError(f"{name} must hold numbers, got dtype {arr.dtype}.")
        values = arr
        csr = None
    if values.size and not np.all(np.isfinite(values)):
        raise DataError(f"{name} contains NaN or infinite values; interactions must be finite (binary 0/1).")
    if values.size and np.any(values < 0):
        raise DataError(f"{name} contains negative values (min {values.min()}); interactions must be ≥ 0 (binary 0/1).")
    if csr is None:
        csr = sp.csr_matrix(np.asarray(X, dtype=np.float32))
    if csr.shape[0] == 0 or csr.shape[1] == 0:
        raise DataError(f"{name} is empty (shape {csr.shape}); it needs at least one user and one item.")
    if n_items is not None and csr.shape[1] != n_items:
        raise DataError(
            f"{name} has {csr.shape[1]} item columns but the model was fitted on {n_items}; use the same item "
            "index (the same dataset's columns)."
        )
    if require_interactions and not np.any(csr.data):
        raise DataError(
            f"{name} has no interactions (shape {csr.shape}, every value 0): there is nothing to fit, and a model "
            "fitted on it would recommend items by their index. Fit on a matrix with at least one interaction "
            "(check the data, the sample or the support passed)."
        )
    return csr


def binary_interactions(X: MatrixLike, name: str = "X", *, require_interactions: bool = False) -> sp.csr_matrix:
    """A float32 binary CSR copy of ``X`` (sorted indices, no stored zeros): every stored non-zero becomes 1.

    Args:
        X: ``(users, items)`` scipy.sparse matrix or dense 2-D array of finite non-negative values.
        name: what to call it in error messages.
        require_interactions: also refuse a matrix without a single interaction.

    Raises:
        DataError: what :func:`check_interactions` rejects (not 2-D, empty, NaN, negative), or no interaction
            at all when ``require_interactions``.
    """
    checked = check_interactions(X, name, require_interactions=require_interactions)
    csr = sp.csr_matrix(checked, dtype=np.float32, copy=True)
    csr.sum_duplicates()
    csr.eliminate_zeros()
    csr.data[:] = 1.0
    csr.sort_indices()
    return csr


def check_fraction(value: Any, name: str, *, allow_zero: bool) -> float:
    """``value`` as a float in ``[0, 1]`` (``allow_zero``) or ``(0, 1]``; a percentage gets a hint to divide by 100."""
    low = "[0, 1]" if allow_zero else "(0, 1]"
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number in {low}, got {value!r}.") from None
    ok = (0.0 <= value <= 1.0) if allow_zero else (0.0 < value <= 1.0)
    if not ok or not np.isfinite(value):
        raise ParameterError(
            f"{name} must be a fraction in {low} (e.g. 0.9 for 90 %), got {value!r}."
            + (" Percentages must be divided by 100." if value > 1 else "")
        )
    return value


def check_seed(value: Any, name: str = "seed") -> int:
    """``value`` as a seed: an integer ≥ 0, the only seeds NumPy's and JAX's generators take reproducibly.

    Raises:
        ParameterError: a negative, fractional, boolean or non-numeric value (the message names ``name``).
    """
    if not is_int(value) or value < 0:
        raise ParameterError(f"{name} must be an integer ≥ 0 (e.g. 42), got {value!r}.")
    return int(value)


def as_rng(seed: Any) -> np.random.Generator:
    """``seed`` itself when it is a :class:`numpy.random.Generator`, else ``np.random.default_rng(seed)``."""
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def positive_int(name: str, value: Any) -> int:
    """``value`` as an ``int`` ≥ 1 (a float with an integer value is accepted); else a :class:`ParameterError`."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        if isinstance(value, float) and value.is_integer() and value >= 1:
            return int(value)
        raise ParameterError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def positive_float(name: str, value: Any) -> float:
    """``value`` as a finite ``float`` > 0; else a :class:`ParameterError`."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a positive number, got {value!r}.") from None
    if not math.isfinite(out) or out <= 0:
        raise ParameterError(f"{name} must be a positive finite number, got {value!r}.")
    return out


def non_negative_float(name: str, value: Any, hint: str = "") -> float:
    """``value`` as a finite ``float`` ≥ 0; else a :class:`ParameterError` (``hint`` is appended to its message,
    e.g. the usual values)."""
    suffix = f" {hint}" if hint else ""
    if isinstance(value, (bool, np.bool_)):
        raise ParameterError(f"{name} must be a number ≥ 0, got {value!r}.{suffix}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number ≥ 0, got {value!r}.{suffix}") from None
    if not math.isfinite(out) or out < 0:
        raise ParameterError(f"{name} must be a finite number ≥ 0, got {value!r}.{suffix}")
    return out


def fraction(name: str, value: Any) -> float:
    """``value`` as a ``float`` in ``[0, 1)`` (a dropout rate); else a :class:`ParameterError`."""
    out = non_negative_float(name, value)
    if out >= 1:
        raise ParameterError(f"{name} must be in [0, 1) (a dropout rate), got {value!r}.")
    return out


class DictConfig:
    """What the kit's frozen dataclass configurations share: a JSON round trip and field checks with one
    message format (``<Class>.<field> must be <what>, got <value>``).

    Subclasses are ``@dataclass(frozen=True)`` classes that check their fields in ``__post_init__`` with
    :meth:`check_int_fields`, :meth:`check_real_field` and :meth:`check_choice_field`.
    """

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the fields (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls: type[_Config], d: Mapping[str, Any]) -> _Config:
        """Inverse of :meth:`to_dict`.

        Raises:
            ParameterError: a key that is not a field (the message lists the fields), or a bad value.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ParameterError(f"unknown {cls.__name__} fields {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)

    def field_error(self, name: str, want: str) -> ParameterError:
        """The error for field ``name`` when it is not ``want`` (e.g. ``"an integer >= 1"``)."""
        return ParameterError(f"{type(self).__name__}.{name} must be {want}, got {getattr(self, name)!r}.")

    def check_int_fields(self, names: Iterable[str], minimum: int) -> None:
        """Every field of ``names`` is an integer ≥ ``minimum`` (``bool`` refused)."""
        for name in names:
            value = getattr(self, name)
            if not is_int(value) or value < minimum:
                raise self.field_error(name, f"an integer >= {minimum}")

    def check_real_field(self, name: str, low: float = -math.inf, high: float = math.inf, *,
                         low_open: bool = False, high_open: bool = False, note: str = "") -> None:
        """Field ``name`` is a finite real number within the bounds (open or closed); ``note`` explains it."""
        value = getattr(self, name)
        ok = is_real(value) and (value > low if low_open else value >= low) and (
            value < high if high_open else value <= high)
        if not ok:
            if math.isinf(high):
                want = f"a finite number {'>' if low_open else '>='} {low:g}"
            else:
                want = f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
            raise self.field_error(name, want + (f" ({note})" if note else ""))

    def check_choice_field(self, name: str, choices: Iterable[Any]) -> None:
        """Field ``name`` is one of ``choices``."""
        choices = tuple(choices)
        if getattr(self, name) not in choices:
            raise self.field_error(name, f"one of {choices}")


_LIST_EXAMPLES = {int: "10,100,1000", float: "0,1,5,20", str: "user-rns,distill-cf"}


def parse_list(value: Any, kind: type = str, name: str = "value", *, minimum: float | None = None,
               maximum: float | None = None) -> list:
    """A list parameter (of a notebook, the runner, a CLI): ``"a,b"``, ``"10, 20"`` or a list / tuple.

    Args:
        value: comma-separated text, a sequence, or one value.
        kind: ``int``, ``float`` or ``str``; each item is converted (``int`` takes ``"10"`` and ``"10.0"``).
        name: the parameter's name, for error messages.
        minimum, maximum: bounds every number must respect (inclusive), e.g. ``minimum=0`` for a λ grid.

    Returns:
        The items, in the given order, blanks skipped.

    Raises:
        ParameterError: an empty list, an item ``kind`` cannot convert, a non-finite number or one outside
            the bounds (the message names ``name``, the item and an example of a valid value).
    """
    items = value.split(",") if isinstance(value, str) else list(value if isinstance(value, Iterable) else [value])
    example = _LIST_EXAMPLES.get(kind, "a,b")
    label = {int: "an integer", float: "a number", str: "a name"}.get(kind, kind.__name__)
    out = []
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        try:
            if kind is int:
                as_float = float(text)
                if not as_float.is_integer():
                    raise ValueError(text)
                converted = int(as_float)
            else:
                converted = kind(text)
        except (TypeError, ValueError, OverflowError):
            raise ParameterError(f"{name}: cannot read {text!r} as {label}; give comma-separated values, e.g. "
                                 f"{name}={example!r}.") from None
        if kind in (int, float):
            if not math.isfinite(converted):
                raise ParameterError(f"{name}: {text!r} is not a finite number; give e.g. {name}={example!r}.")
            if minimum is not None and converted < minimum:
                raise ParameterError(f"{name}: {text} is below the smallest allowed value {minimum:g}; "
                                     f"give values ≥ {minimum:g}, e.g. {name}={example!r}.")
            if maximum is not None and converted > maximum:
                raise ParameterError(f"{name}: {text} is above the largest allowed value {maximum:g}; "
                                     f"give values ≤ {maximum:g}.")
        out.append(converted)
    if not out:
        raise ParameterError(f"{name} is empty; give at least one value, e.g. {name}={example!r}.")
    return out


LIST_PARAMETERS: dict[str, tuple[type, float | None, float | None]] = {
    "lambdas": (float, 0, None),
    "ease_lambdas": (float, 0, None),
    "depths": (int, 1, None),
    "widths": (int, 1, None),
    "budgets": (int, 1, None),
    "distill_budgets": (int, 1, None),
    "arcf_budgets": (int, 1, None),
    "noise_levels": (float, 0, 100),
    "noise_percents": (float, 0, 100),
    "revealed_percents": (float, 0, 100),
    "frontier_budget_percents": (float, 0, 100),
    "frontier_gammas": (int, 1, None),
    "frontier_taus": (float, 0, None),
}
"""The notebooks' numeric list parameters: name → (item type, minimum, maximum). The same name means the same
thing in every notebook; :func:`list_parameter` reads them there and the runner checks them before a run."""


def list_parameter(name: str, value: Any) -> list:
    """The numeric list parameter ``name`` of :data:`LIST_PARAMETERS` read with its type and bounds.

    Example: ``list_parameter("lambdas", "0,1,5")`` → ``[0.0, 1.0, 5.0]``; ``"1,x,5"`` and ``"-1,5"`` raise.

    Raises:
        ParameterError: what :func:`parse_list` refuses; ``KeyError`` for a name the table does not hold.
    """
    kind, minimum, maximum = LIST_PARAMETERS[name]
    return parse_list(value, kind, name, minimum=minimum, maximum=maximum)
