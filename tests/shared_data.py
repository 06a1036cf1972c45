"""Skip markers for tests that need the shared data directory (``$INFAE_DATA_DIR`` or ``../shared/data``)."""

from __future__ import annotations

import pytest

from infae_kit import paths


def needs_data_file(relative: str) -> pytest.MarkDecorator:
    """Skip unless the data directory holds the file ``relative`` (e.g. ``"ml-1m/total_data.hdf5"``)."""
    root = paths.data_dir()
    return pytest.mark.skipif(root is None or not (root / relative).is_file(),
                              reason=f"{relative} is not in the data directory (set INFAE_DATA_DIR)")
