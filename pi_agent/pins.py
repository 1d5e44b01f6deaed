"""Pins without the device layer: holding a relay at its inactive level, and the mock factory.

Imported by ``pi-agent safe-off``, so it needs nothing but gpiozero (not the devices package).

``mock_pin_factory`` is gpiozero's MockFactory for ``hardware = "mock"``, optionally mirroring
every pin change to a file.

MockFactory pins live inside one process, so nothing outside it can see them, and when the process
is killed they vanish. The safety tests need more: they kill the agent with SIGKILL and watch
``pi-agent safe-off`` (another process) drive the relays off. With ``PI_AGENT_PIN_LOG=PATH`` in the
environment, each mock pin appends one line to PATH whenever its function or level changes::

    <CLOCK_MONOTONIC seconds> <pid> GPIO<n> <input|output> <level 0..1>

written with one ``write(2)`` on an ``O_APPEND`` descriptor before the change returns, so the line
is in the file (the kernel's page cache, shared by every process) even if the process is killed a
microsecond later, and lines from several processes never interleave. A killed process writes
nothing more: the last line of a pin is its level from then on, which is what a Raspberry Pi OS
kernel does with a released output (it keeps its last level), the case the way off must handle.
Outside tests the variable is unset and this is plain MockFactory.
"""

from __future__ import annotations

import os
import time
from typing import Any, Final

PIN_LOG_ENV: Final = "PI_AGENT_PIN_LOG"


def mock_pin_factory(environ: dict[str, str] | None = None) -> Any:
    """A MockFactory with PWM-capable pins; mirrored to ``$PI_AGENT_PIN_LOG`` when it is set."""
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    path = (os.environ if environ is None else environ).get(PIN_LOG_ENV, "")
    if not path:
        return MockFactory(pin_class=MockPWMPin)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    pid = os.getpid()

    class MirroredPin(MockPWMPin):  # type: ignore[misc]
        _quiet = False

        def _record(self) -> None:
            if self._quiet:
                return
            line = f"{time.monotonic():.6f} {pid} GPIO{self.info.name.removeprefix('GPIO')} "
            os.write(fd, f"{line}{self._function} {float(self._state):g}\n".encode())

        def _set_function(self, value: str) -> None:
            before = self._function
            super()._set_function(value)
            if self._function != before:
                self._record()

        def output_with_state(self, state: Any) -> None:
            # One line, as the hardware does it: lgpio claims the line as an output at that level.
            self._quiet = True
            try:
                super().output_with_state(state)
            finally:
                self._quiet = False
            self._record()

        def _change_state(self, value: Any) -> bool:
            changed: bool = super()._change_state(value)
            if changed:
                self._record()
            return changed

    return MockFactory(pin_class=MirroredPin)


def hold_inactive(output: Any) -> None:
    """Switch ``output`` off and let go of it while its pin stays an output at the inactive level.

    gpiozero's ``close()`` turns a pin back into a floating input, and so does its exit handler
    for every pin the factory still knows: an active-high relay board without a pull-down may
    then switch on while the agent is stopped. Instead the device gives up its reservation, forgets
    the pin (so neither ``close()`` nor the exit handler touches it), and the pin keeps driving the
    inactive level until the process exits; what the line does after that is up to the kernel
    (docs/install.md). A failing ``off()`` is raised for the caller to retry and report; the pin
    is let go of either way, never made an input.
    """
    if getattr(output, "_pin", None) is None:
        return  # closed or already let go of
    try:
        output.off()
    finally:
        pin = getattr(output, "_pin", None)
        if pin is not None:
            factory = output.pin_factory
            factory.release_pins(output, pin.info.name)
            pins = getattr(factory, "pins", None)
            # gpiozero's exit handler closes the default factory's pins (turning them into inputs);
            # a factory the agent made itself (mock) is not closed at exit and keeps its pins.
            from gpiozero import Device

            if isinstance(pins, dict) and factory is Device.pin_factory:
                for key in [key for key, value in pins.items() if value is pin]:
                    del pins[key]
            output._pin = None
