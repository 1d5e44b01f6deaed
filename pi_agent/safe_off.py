"""``pi-agent safe-off``: drive every configured relay to its safe level without a running agent.

systemd runs it from the unit's ``ExecStopPost=`` after the agent's process has ended for any
reason (a crash, SIGKILL, the OOM killer, a watchdog kill, a clean stop) and from
``ExecStartPre=`` at every start, boot included. So it must work when nothing else does:

- it reads ``agent.toml`` only, and leniently: a zone whose entry is broken is reported and the
  others are still switched off; a configuration the agent itself refuses (an unknown option
  elsewhere) still has its relays switched off. It never reads state, keys or clients, never
  touches the network, and imports only ``tomllib`` and gpiozero, so it is quick to start;
- outputs first: the pump (or master valve) off, then the zone valves after the pump's ``lag``
  (the pump never pushes against closed valves), then lights whose ``startup`` is ``"off"`` (they
  come back off anyway); each pin is then held as an output at its inactive level
  (``hold_inactive``), never released as a floating input. It reports afterwards, one line per
  relay; a relay that fails is retried, then reported, and the others still go off.

Exit status: 0 all off, 1 a relay could not be switched, 78 no usable ``agent.toml``.
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_CONFIG: Final = 78
CONFIG_FILE: Final = "agent.toml"
MAX_LAG: Final = 60.0
RETRIES: Final = 3
RETRY_PAUSE: Final = 0.05
MAX_PIN: Final = 27


@dataclass(frozen=True)
class SafeOutput:
    """One output and its inactive level: ``key`` names it as agent.toml does."""

    key: str
    pin: int
    active_high: bool


@dataclass(frozen=True)
class SafeOffPlan:
    """What to switch off, in this order: ``first``, wait ``lag`` seconds, then ``then``."""

    first: tuple[SafeOutput, ...]
    lag: float
    then: tuple[SafeOutput, ...]
    mock: bool
    problems: tuple[str, ...]


class SafeOffConfigError(Exception):
    """agent.toml cannot be read at all, so no pin is known."""


def _output(key: str, raw: Any, problems: list[str]) -> SafeOutput | None:
    if not isinstance(raw, dict):
        problems.append(f"{key}: not a table; skipped")
        return None
    pin = raw.get("pin")
    if isinstance(pin, bool) or not isinstance(pin, int) or not 0 <= pin <= MAX_PIN:
        problems.append(f"{key}.pin: {pin!r} is not a BCM GPIO number; skipped")
        return None
    active_high = raw.get("active_high", True)
    if not isinstance(active_high, bool):
        problems.append(f"{key}.active_high: {active_high!r} is not true or false; skipped")
        return None
    return SafeOutput(f"{key}.pin", pin, active_high)


def plan_from_toml(raw: dict[str, Any]) -> SafeOffPlan:
    """The outputs agent.toml configures, read as leniently as safety allows."""
    problems: list[str] = []
    agent = raw.get("agent")
    mock = isinstance(agent, dict) and agent.get("hardware") == "mock"
    first: list[SafeOutput] = []
    then: list[SafeOutput] = []
    lag = 0.0
    sprinklers = raw.get("sprinklers")
    if isinstance(sprinklers, dict):
        pump = sprinklers.get("pump")
        if pump is not None:
            output = _output("sprinklers.pump", pump, problems)
            if output is not None:
                first.append(output)
                raw_lag = pump.get("lag", 1.0)
                lag = 1.0  # the agent's default, for anything but a real number
                number = isinstance(raw_lag, int | float) and not isinstance(raw_lag, bool)
                if number and not math.isnan(raw_lag):
                    lag = min(max(float(raw_lag), 0.0), MAX_LAG)
        zones = sprinklers.get("zone", [])
        for index, zone in enumerate(zones if isinstance(zones, list) else []):
            output = _output(f"sprinklers.zone[{index}]", zone, problems)
            if output is not None:
                then.append(output)
    lights = raw.get("light", [])
    for index, light in enumerate(lights if isinstance(lights, list) else []):
        if isinstance(light, dict) and light.get("startup", "off") == "off":
            output = _output(f"light[{index}]", light, problems)
            if output is not None:
                then.append(output)
    # A pin listed twice (a typo the agent refuses) is still switched off, once.
    seen: set[int] = set()
    unique: list[list[SafeOutput]] = [[], []]
    for group, outputs in ((0, first), (1, then)):
        for output in outputs:
            if output.pin not in seen:
                seen.add(output.pin)
                unique[group].append(output)
    return SafeOffPlan(tuple(unique[0]), lag, tuple(unique[1]), mock, tuple(problems))


def read_plan(config_dir: Path) -> SafeOffPlan:
    path = config_dir / CONFIG_FILE
    try:
        with path.open("rb") as handle:
            raw = tomllib.load(handle)
    except OSError as err:
        raise SafeOffConfigError(f"{path}: cannot read: {err.strerror or err}") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as err:
        raise SafeOffConfigError(f"{path}: not valid TOML: {err}") from None
    return plan_from_toml(raw)


def work_dir(config_dir: Path) -> Path:
    """A writable directory for lgpio's FIFO: the unit's private /tmp, not its read-only ``/``."""
    del config_dir  # safe-off must not depend on the state directory existing
    return Path(tempfile.gettempdir())


def _default_factory(mock: bool, config_dir: Path) -> Any:
    # The same chip the agent uses (found by its label: the Pi 5 renumbered it), never a guess.
    from pi_agent.gpio_chip import gpio_pin_factory, mock_pin_factory

    choice = mock_pin_factory() if mock else gpio_pin_factory(work_dir=work_dir(config_dir))
    return choice.factory


def _switch_off(factory: Any, output: SafeOutput) -> str | None:
    """Claim the pin as an output at its inactive level and hold it; None, or what failed."""
    from gpiozero import LED

    from pi_agent.pins import hold_inactive

    error = ""
    for attempt in range(RETRIES):
        if attempt:
            time.sleep(RETRY_PAUSE)
        try:
            # initial_value=False claims the line directly at the inactive level: no blip.
            device = LED(
                output.pin,
                active_high=output.active_high,
                initial_value=False,
                pin_factory=factory,
            )
            hold_inactive(device)
            return None
        except Exception as err:
            error = f"{type(err).__name__}: {err}"
    return f"{output.key} (GPIO{output.pin}): could not switch off after {RETRIES} tries: {error}"


def drive_off(
    plan: SafeOffPlan,
    factory: Any,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Switch the plan's outputs off in order; return the failures (empty when all are off)."""
    failures = [f for f in (_switch_off(factory, o) for o in plan.first) if f]
    if plan.first and plan.then and plan.lag > 0:
        sleep(plan.lag)  # the pump spins down before its valves close
    failures += [f for f in (_switch_off(factory, o) for o in plan.then) if f]
    return failures


def run(config_dir: Path, *, factory: Any = None) -> int:
    """Drive everything off, then report. Never raises; returns the exit status."""
    try:
        plan = read_plan(config_dir)
    except SafeOffConfigError as err:
        print(f"safe-off: {err}; no relay was touched", file=sys.stderr)
        return EXIT_CONFIG
    try:
        if factory is None:
            factory = _default_factory(plan.mock, config_dir)
        failures = drive_off(plan, factory)
    except Exception as err:  # no pin factory at all (no /dev/gpiochip*, no lgpio)
        failures = [f"cannot use the GPIO pins: {type(err).__name__}: {err}"]
    # Reporting comes only now: nothing may delay switching off.
    for problem in plan.problems:
        print(f"safe-off: {problem}", file=sys.stderr)
    for failure in failures:
        print(f"safe-off: {failure}", file=sys.stderr)
    done = len(plan.first) + len(plan.then) - len(failures)
    print(f"safe-off: {done} output(s) at their inactive level, {len(failures)} failed")
    return EXIT_FAILED if failures else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pi_agent.safe_off --config-dir DIR``: the same without the CLI's imports."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] != "--config-dir":
        print("usage: python -m pi_agent.safe_off --config-dir DIR", file=sys.stderr)
        return 2
    return run(Path(args[1]))


if __name__ == "__main__":
    sys.exit(main())
