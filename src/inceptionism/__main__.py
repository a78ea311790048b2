"""``python -m inceptionism`` is the same as the ``inceptionism`` command."""

import sys

from .cli import main

sys.exit(main())
