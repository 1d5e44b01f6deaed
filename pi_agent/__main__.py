"""``python -m pi_agent``: the same as the ``pi-agent`` command."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
