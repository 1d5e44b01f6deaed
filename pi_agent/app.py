"""AgentApp: loads the configuration, builds the devices and serves them; signals and shutdown.

Outputs off first, on every path:

- start-up builds the devices (every relay at its inactive level, the sprinklers first) right
  after reading agent.toml, before it reads any state, key or client file; a start-up error the
  user must fix exits 78 only after that. An agent.toml the agent refuses still has its relays
  switched off (``safe_off``, which reads it leniently).
- SIGTERM and SIGINT, also during start-up, stop the agent: the server refuses further commands,
  the devices that hold outputs stop first in safety order (the pump, then the valves after its
  lag, then lights), and only then does anything else stop or log: the other devices (camera,
  frame) together, each within its own time limit, then the sessions close with 1001 "going away".

SIGHUP re-reads the client list: sessions of removed, rotated or re-roled clients are closed at
once, others go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding
from pi_secure_ws_protocol.const import Role

from . import fault_injection, pki, safe_off, systemd
from .blocklist import BlockList
from .config import AgentConfig, load_config
from .credentials import CredentialError, CredentialStore
from .devices import build_devices
from .devices.base import Device, DeviceContext
from .devices.registry import REGISTRY
from .errors import ConfigError, DeviceError
from .fsutil import check_private, ensure_private_dir
from .gpio_chip import PinFactoryChoice, gpio_pin_factory, mock_pin_factory
from .memory_budget import MemoryBudget
from .server import AgentIdentity, AgentServer, ClientDirectory

_LOGGER = logging.getLogger(__name__)

CLIENTS_FILE = "clients.json"
EXIT_RESTART = 75  # EX_TEMPFAIL: systemd's Restart= brings the agent back
STOP_TIMEOUT = 5.0
# Devices with a stop_rank below this hold outputs: they stop first, one by one, in rank order.
SAFETY_RANKS = 50
RENEW_CHECK_INTERVAL = 24 * 3600.0


class StartupError(Exception):
    """The agent cannot start; ``problems`` says why, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class AgentApp:
    def __init__(
        self,
        config_dir: Path,
        *,
        advertise: bool = True,
        listen_host: str | None = None,
        port: int | None = None,
    ) -> None:
        self.config_dir = config_dir
        self.advertise = advertise
        self._listen_host = listen_host
        self._port = port
        self.config: AgentConfig | None = None
        self.devices: dict[str, Device] = {}
        self.server: AgentServer | None = None
        self.credentials: CredentialStore | None = None
        self.exit_code = 0
        self.stopped = asyncio.Event()
        self._advertiser: object | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._stop_started = False
        self._faults = fault_injection.Faults()

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.port

    async def start(self) -> None:
        config_dir = self.config_dir
        try:
            config = load_config(config_dir, REGISTRY)
        except ConfigError as err:
            # The agent will not run, but a relay left on by an earlier run must still go off.
            problems = _safe_off_leniently(config_dir)
            raise StartupError(err.problems + problems) from None
        self.config = config
        state_dir = config.agent.state_dir
        mock = config.agent.hardware == "mock"
        self._faults = fault_injection.read_faults(mock)
        fault_injection.install(self._faults)
        pins = _pin_choice(mock, state_dir if state_dir.is_dir() else safe_off.work_dir(config_dir))
        # One budget for what peers make the agent hold: the server's messages, the decodes.
        memory = MemoryBudget(config.limits.memory_budget)
        context = DeviceContext(
            memory=memory,
            pin_factory=pins.factory,
            state_dir=state_dir,
            mock=mock,
            config_dir=config_dir,
            gpio=pins.details,
        )
        # Outputs first: building a device drives its pins to their inactive level (sprinklers
        # first); state is read only after, and a damaged state file is set aside, never fatal.
        try:
            devices = build_devices(config, context, on_restart=self.request_restart)
        except (ConfigError, DeviceError) as err:
            problems = err.problems if isinstance(err, ConfigError) else [str(err)]
            # The devices built so far are gone (gpiozero released their pins): off again.
            raise StartupError(problems + _safe_off_leniently(config_dir)) from None
        self.devices = {d.id: d for d in devices}
        try:
            ensure_private_dir(state_dir)
        except OSError as err:
            raise StartupError([f"{state_dir}: cannot create: {err}"]) from None
        problems = check_private(config_dir, state_dir)
        if problems:
            raise StartupError(problems)
        try:
            if pki.renew_leaf_if_needed(config_dir):
                _LOGGER.info("renewed the TLS certificate (the pinned CA is unchanged)")
            ssl_context = pki.server_ssl_context(config_dir)
            ca_pem = pki.ca_pem(config_dir)
            leaf_der = pki.load_leaf_cert(config_dir).public_bytes(Encoding.DER)
        except pki.PkiError as err:
            raise StartupError([str(err)]) from None
        try:
            self.credentials = CredentialStore.load(config_dir / CLIENTS_FILE)
        except CredentialError as err:
            raise StartupError([str(err)]) from None

        blocklist = BlockList(state_dir / "blocklist.json", config.blocklist)
        self.server = AgentServer(
            identity=AgentIdentity(
                agent_id=config.agent_id, name=config.agent.name, model=_model()
            ),
            ssl_context=ssl_context,
            ca_pem=ca_pem,
            leaf_der=leaf_der,
            clients=self._directory(self.credentials),
            devices=devices,
            blocklist=blocklist,
            limits=config.limits,
            allowed_origins=config.security.allowed_origins,
            host=self._listen_host or config.agent.listen_host,
            port=config.agent.port if self._port is None else self._port,
            memory=memory,
        )
        started: list[Device] = []
        try:
            for device in devices:
                await device.start()
                started.append(device)
            await self.server.start()
        except BaseException:
            for device in reversed(started):
                await _stop_device(device)
            raise
        if self.advertise and config.agent.zeroconf:
            self._advertiser = await _advertise(config, self.server.port)
        self._renewer = asyncio.get_running_loop().create_task(self._renew_periodically())
        systemd.notify_ready(f"listening on port {self.server.port}")
        # Pinged from the event loop: a hung loop stops the pings and systemd restarts the agent.
        self._watchdog = asyncio.get_running_loop().create_task(systemd.watchdog_pinger())

    async def _renew_periodically(self) -> None:
        """Renew the leaf before it expires while the agent keeps running (the CA stays)."""
        while True:
            await asyncio.sleep(RENEW_CHECK_INTERVAL)
            self.renew_certificate()

    def renew_certificate(self, *, force: bool = False) -> bool:
        """Renew the leaf if it is due; new handshakes use it, sessions go on."""
        if self.server is None:
            return False
        try:
            if not pki.renew_leaf_if_needed(self.config_dir, force=force):
                return False
            # A new context, not the old one reloaded: its new session-ticket key ends TLS
            # resumption of sessions made with the old leaf, whose channel binding is now stale.
            context = pki.server_ssl_context(self.config_dir)
            leaf_der = pki.load_leaf_cert(self.config_dir).public_bytes(Encoding.DER)
            self.server.ssl_context = context
            self.server.leaf_der = leaf_der
        except pki.PkiError as err:
            _LOGGER.error("could not renew the TLS certificate: %s", err)
            return False
        _LOGGER.info("renewed the TLS certificate (the pinned CA is unchanged)")
        return True

    @staticmethod
    def _directory(store: CredentialStore) -> ClientDirectory:
        def role_of(client_id: str) -> Role | None:
            record = store.get(client_id)
            return record.role if record else None

        return ClientDirectory(store.lookup, role_of)

    def reload_clients(self) -> int:
        """Re-read clients.json; close sessions whose credentials changed. Returns how many."""
        if self.server is None or self.credentials is None:
            return 0
        try:
            new = CredentialStore.load(self.config_dir / CLIENTS_FILE)
        except CredentialError as err:
            _LOGGER.error("keeping the current clients: %s", err)
            return 0
        old = self.credentials
        self.credentials = new
        self.server.clients = self._directory(new)

        def still_valid(client_id: str, role: Role) -> bool:
            before, after = old.get(client_id), new.get(client_id)
            return (
                before is not None
                and after is not None
                and after.role == role
                and after.verifier == before.verifier
            )

        closed = self.server.revoke(still_valid)
        _LOGGER.info("reloaded clients: %d client(s), %d session(s) closed", len(new), closed)
        return closed

    def request_restart(self) -> None:
        _LOGGER.warning("restart requested by an admin client")
        self.exit_code = EXIT_RESTART
        self.stopped.set()

    async def stop(self) -> None:
        """Refuse commands, outputs off (safety order), then everything else. Idempotent."""
        if self._stop_started:
            await self.stopped.wait()
            return
        self._stop_started = True
        if self.server is not None:
            self.server.stop_accepting()
        devices = sorted(self.devices.values(), key=lambda device: device.stop_rank)
        for device in devices:
            if device.stop_rank < SAFETY_RANKS:
                await _stop_device(device)
        systemd.notify_stopping("outputs off; closing sessions")
        _LOGGER.info("stopping: outputs are off; stopping the other devices and sessions")
        for task in (self._watchdog, self._renewer):
            if task is not None:
                task.cancel()
        # Slow ones (camera, frame) together: each has its own limit, none waits for another.
        await asyncio.gather(
            *(
                _stop_device(device, self._faults.slow_stop)
                for device in devices
                if device.stop_rank >= SAFETY_RANKS
            )
        )
        if self.server is not None:
            await self.server.stop()
        if self._advertiser is not None:
            await _unadvertise(self._advertiser)
            self._advertiser = None
        self.stopped.set()


async def _stop_device(device: Device, injected_delay: float = 0.0) -> None:
    try:
        async with asyncio.timeout(STOP_TIMEOUT):
            if injected_delay:
                await asyncio.sleep(injected_delay)  # a test's slow device (fault_injection)
            await device.stop()
    except Exception:
        _LOGGER.exception("stopping %s failed", device.id)


def _pin_choice(mock: bool, work_dir: Path) -> PinFactoryChoice:
    return mock_pin_factory() if mock else gpio_pin_factory(work_dir=work_dir)


def _safe_off_leniently(config_dir: Path) -> list[str]:
    """Switch off what an agent.toml the agent refuses still names; its failures, as problems."""
    try:
        plan = safe_off.read_plan(config_dir)
    except safe_off.SafeOffConfigError:
        return []  # no pin is known: the same problem is already reported
    if not plan.first and not plan.then:
        return []
    try:
        failures = safe_off.drive_off(
            plan, _pin_choice(plan.mock, safe_off.work_dir(config_dir)).factory
        )
    except Exception as err:
        failures = [f"cannot use the GPIO pins: {err}"]
    return [f"safe-off: {failure}" for failure in failures]


def _model(root: Path = Path("/")) -> str | None:
    try:
        return (root / "proc/device-tree/model").read_text().rstrip("\x00\n") or None
    except OSError:
        return None


async def _advertise(config: AgentConfig, port: int) -> object | None:
    """Announce the agent over mDNS so Home Assistant discovers it; failures only log."""
    try:
        from .discovery import advertise

        return await advertise(config, port)
    except Exception as err:
        _LOGGER.warning("not advertising over mDNS: %s", err)
        return None


async def _unadvertise(handle: object) -> None:
    with contextlib.suppress(Exception):
        from .discovery import withdraw

        await withdraw(handle)


def run_agent(config_dir: Path, log_level: str = "INFO") -> int:
    """Run until SIGTERM/SIGINT; return the process exit status."""
    handler = logging.StreamHandler(sys.stderr)
    # Under systemd, priority prefixes give the journal real levels; elsewhere a plain format.
    handler.setFormatter(
        systemd.JournalFormatter()
        if systemd.stderr_is_journal()
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    logging.basicConfig(level=log_level.upper(), handlers=[handler])
    return asyncio.run(_main(config_dir))


async def _main(config_dir: Path) -> int:
    app = AgentApp(config_dir)
    loop = asyncio.get_running_loop()
    # Before start-up: a SIGTERM while starting still stops safely (and is not the default
    # action, which would end the process with its relays wherever they are).
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, app.stopped.set)
    starting = loop.create_task(app.start())
    stop_requested = loop.create_task(app.stopped.wait())
    await asyncio.wait({starting, stop_requested}, return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError, StartupError, OSError):
            await starting
        await app.stop()
        _LOGGER.info("stopped during start-up; outputs are off")
        return app.exit_code
    try:
        starting.result()
    except StartupError as err:
        await app.stop()  # outputs off before the exit that systemd will not restart
        for problem in err.problems:
            _LOGGER.error("%s", problem)
        _LOGGER.error("not starting: fix the problems above (pi-agent check-config helps)")
        stop_requested.cancel()
        return 78  # EX_CONFIG
    except OSError as err:
        await app.stop()
        _LOGGER.error("not starting: %s", err)
        stop_requested.cancel()
        return 71  # EX_OSERR
    loop.add_signal_handler(signal.SIGHUP, app.reload_clients)
    try:
        await stop_requested
    finally:
        await app.stop()
    return app.exit_code
