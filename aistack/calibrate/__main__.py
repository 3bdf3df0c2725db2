"""``python -m aistack.calibrate pack|run|table|points`` (see runner.py)."""

import sys

from .runner import main

sys.exit(main())
