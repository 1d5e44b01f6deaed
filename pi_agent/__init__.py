"""pi_agent: the Raspberry Pi side of pi_secure_ws."""

from __future__ import annotations

__version__ = "0.1.0"
