"""neural-tangents as a *reference* (tests, notebook 01): never on the kit's hot paths.

neural-tangents 0.6.5 imports ``neural_tangents.experimental`` at import time, which imports tensorflow and
tf2jax (only used by its TF interop). The kit installs neural-tangents without those dependencies (see the
README's "Version pins"), so :func:`import_neural_tangents` imports it with ``neural_tangents.experimental``
replaced by a placeholder that raises a clear error if anything in it is used. If tensorflow *is* installed,
the real package is imported unchanged.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import sys
import types

_EXPERIMENTAL = "neural_tangents.experimental"


class _ExperimentalUnavailable(types.ModuleType):
    def __getattr__(self, name):  # pragma: no cover - trivial
        if name.startswith("__"):
            raise AttributeError(name)
        raise ImportError(
            f"neural_tangents.experimental.{name} needs tensorflow and tf2jax, which infae_kit does not install "
            "(see README, 'Version pins'). `pip install tensorflow tf2jax` if you need neural-tangents' TF interop."
        )


def import_neural_tangents():
    """Import and return the ``neural_tangents`` module, without requiring tensorflow.

    Raises:
      ImportError: with install instructions if neural-tangents itself is missing.
    """
    if "neural_tangents" in sys.modules:
        return sys.modules["neural_tangents"]
    if importlib.util.find_spec("neural_tangents") is None:
        raise ImportError(
            "neural-tangents is not installed. Install the pinned version without its tensorflow dependency: "
            "`pip install --no-deps -r requirements/neural-tangents.txt` (or run `make env`)."
        )
    have_tf = importlib.util.find_spec("tensorflow") is not None and importlib.util.find_spec("tf2jax") is not None
    if not have_tf and _EXPERIMENTAL not in sys.modules:
        sys.modules[_EXPERIMENTAL] = _ExperimentalUnavailable(_EXPERIMENTAL)
    return importlib.import_module("neural_tangents")


def reference_autoencoder_kernel_fn(n_items: int, depth: int = 1, width: int = 1024):
    """neural-tangents ``kernel_fn`` of the paper's autoencoder: [Dense(width) → Relu] × depth → Dense(n_items).

    ``W_std = √2``, ``b_std = 0.1``, NTK parameterisation, as in the paper's code. Returns
    ``(init_fn, apply_fn, kernel_fn)``.
    """
    nt = import_neural_tangents()
    stax = nt.stax
    layers = []
    for _ in range(depth):
        layers += [stax.Dense(width, W_std=math.sqrt(2.0), b_std=0.1, parameterization="ntk"), stax.Relu()]
    layers += [stax.Dense(n_items, W_std=math.sqrt(2.0), b_std=0.1, parameterization="ntk")]
    return stax.serial(*layers)
