"""python3 -m guest.muse: see cli.py; ctl goes to its client alone (ctl.py says why)."""

import sys

if sys.argv[1:2] == ["ctl"]:
    from .ctl import main
else:
    from .cli import main

sys.exit(main())
