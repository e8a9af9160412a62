"""``python -m preprocess_service.score``: see :mod:`preprocess_service.score.cli`."""

import sys

from preprocess_service.score.cli import main

sys.exit(main())
