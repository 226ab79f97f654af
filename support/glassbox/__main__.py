"""``python -m glassbox`` is the ``glassbox`` command."""

import sys

from glassbox.cli import main

sys.exit(main())
