"""``python -m moodscope ...``: the same as the ``moodscope`` command."""

import sys

from .cli import main

sys.exit(main())
