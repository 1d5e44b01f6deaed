"""Short commands the devices run (vcgencmd, wlopm, systemctl), without blocking the event loop.

Each runs as an async subprocess with no input and a time limit; a failure of any kind (missing,
timed out, non-zero exit) comes back as a :class:`DeviceError` that says why.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Final

from .base import DeviceError

SUBPROCESS_TIMEOUT: Final = 5.0


async def run_command(argv: Sequence[str], time_limit: float = SUBPROCESS_TIMEOUT) -> str:
    """Run a short command without blocking the loop; its stdout, or DeviceError saying why not."""
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as err:
        raise DeviceError(f"cannot run {argv[0]}: {err.strerror or err}") from err
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), time_limit)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise DeviceError(f"{argv[0]} did not answer within {time_limit:g} s") from None
    if process.returncode != 0:
        detail = stderr.decode(errors="replace").strip() or f"exit status {process.returncode}"
        raise DeviceError(f"{' '.join(argv)} failed: {detail}")
    return stdout.decode(errors="replace")
