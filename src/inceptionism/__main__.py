"""``python -m inceptionism`` is the same as the ``inceptionism`` command."""

import sys

from inceptionism.cli.main import main

sys.exit(main())
