"""The agent's shared exceptions, in a leaf module so any layer may raise or catch them.

It imports nothing of the agent's: config, the device registry, provisioning and the command
line all depend on it, and it on none of them.
"""

from __future__ import annotations

from collections.abc import Sequence


class ConfigError(Exception):
    """The configuration is unusable. ``problems`` holds one ``"key.path: problem"`` per issue."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class DeviceError(Exception):
    """The hardware failed: reported to the caller as ``device_error``."""


class Refused(Exception):
    """The device understood the request and says no (over a limit, rain delay...).

    The message is shown to the user as it is, so it says why.
    """


class ProvisionError(Exception):
    """Setting the agent up cannot go on (a configuration is already there, ...); the message
    says why and what to do."""


class InstallError(Exception):
    """An install-service step failed; the message says which and why."""


class CliError(Exception):
    """A failure to report as one line (each problem on its own line) with an exit status."""

    def __init__(self, message: str | Sequence[str], status: int = 1) -> None:
        lines = [message] if isinstance(message, str) else list(message)
        super().__init__("\n".join(lines))
        self.lines = lines
        self.status = status
