"""``python -m infae_kit.scale`` (see :mod:`infae_kit.scale.cli`)."""

import sys

from infae_kit.scale.cli import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main())
