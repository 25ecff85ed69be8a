"""``python -m omnibench.study``: the same as ``omnibench study``."""

import sys

from omnibench.study.runner import main

sys.exit(main())
