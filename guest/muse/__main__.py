"""python3 -m guest.muse: see cli.py."""

import sys

from .cli import main

sys.exit(main())
