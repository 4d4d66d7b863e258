"""``python -m gpuseg.cli``: the ``gpuseg`` command."""
from __future__ import annotations

import sys

from .main import main

sys.exit(main())
