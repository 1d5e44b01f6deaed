"""The pi-agent command line, run in-process on real files in a temporary directory."""

from __future__ import annotations

import json
import stat
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pi_secure_ws_protocol import errors
from pi_secure_ws_protocol.const import Role
from pi_secure_ws_protocol.scram import ClientExchange, ScramFailed, ServerExchange
from pi_secure_ws_protocol.secret import normalize_secret
from PIL import Image

from pi_agent import cli, ctl, pki, provision
from pi_agent.config import BlocklistSettings, Limits, Security
from pi_agent.credentials import CredentialStore
from pi_agent.errors import CliError, ProvisionError

CBIND = b"\x02" * 32
INIT_KEYS = {"host", "port", "fingerprint", "client_id", "secret", "agent_id", "name"}


class Run:
    """Runs ``pi-agent`` in-process and captures its status and output."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys

    def __call__(self, *argv: str | Path) -> tuple[int, str, str]:
        status = cli.main([str(a) for a in argv])
        out, err = self._capsys.readouterr()
        assert "Traceback" not in err
        return status, out, err

    def ok(self, *argv: str | Path) -> str:
        status, out, err = self(*argv)
        assert status == 0, err
        return out

    def json(self, *argv: str | Path) -> Any:
        return json.loads(self.ok(*argv))


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    return Run(capsys)


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    return tmp_path / "config"


@pytest.fixture
def pairing(run: Run, config_dir: Path) -> dict[str, Any]:
    details: dict[str, Any] = run.json(
        "init", "--config-dir", config_dir, "--host", "gardenpi.local", "--port", "9443",
        "--name", "Garden Pi", "--json",
    )  # fmt: skip
    return details


def logs_in(config_dir: Path, client_id: str, secret: str) -> bool:
    """A real SCRAM exchange against clients.json as the agent would load it."""
    store = CredentialStore.load(config_dir / "clients.json")
    client = ClientExchange(client_id, secret, CBIND)
    server = ServerExchange(CBIND, store.lookup)
    try:
        final = server.server_final(client.client_final(server.server_first(client.client_first())))
        client.verify_server_final(final)
    except ScramFailed:
        return False
    return server.known


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- init -----------------------------------------------------------------------------------------


def test_init_writes_private_files(config_dir: Path, pairing: dict[str, Any]) -> None:
    assert set(pairing) == INIT_KEYS
    assert pairing["host"] == "gardenpi.local"
    assert pairing["port"] == 9443
    assert pairing["name"] == "Garden Pi"
    assert pairing["client_id"] == "homeassistant"
    assert pairing["fingerprint"] == pki.ca_fingerprint(config_dir)
    assert (config_dir / "agent_id").read_text().strip() == pairing["agent_id"]
    assert len(pairing["agent_id"]) == 32
    assert mode(config_dir) == 0o700
    for name in ("ca.key", "key.pem", "clients.json"):
        assert mode(config_dir / name) == 0o600, name
    assert logs_in(config_dir, "homeassistant", pairing["secret"])
    store = CredentialStore.load(config_dir / "clients.json")
    record = store.get("homeassistant")
    assert record is not None
    assert record.role is Role.CONTROL
    assert normalize_secret(pairing["secret"]) not in (config_dir / "clients.json").read_text()
    leaf_names = pki.leaf_info(config_dir).hostnames
    assert "gardenpi.local" in leaf_names
    assert "localhost" in leaf_names


def test_init_config_is_valid_with_demo_devices(config_dir: Path, pairing: dict[str, Any]) -> None:
    config = provision.read_config(config_dir)
    assert config.agent_id == pairing["agent_id"]
    assert config.agent.hardware == "mock"
    assert config.agent.port == 9443
    assert config.agent.advertise_host == "gardenpi.local"
    lights = config.devices["light"]
    assert len(lights) == 2
    assert sorted(light["dimmable"] for light in lights) == [False, True]
    assert len(config.devices["sprinklers"]["zone"]) == 3
    assert "pump" in config.devices["sprinklers"]
    assert config.devices["camera"]["backend"] == "test_pattern"
    assert "frame" in config.devices
    pictures = sorted((config_dir / "state" / "pictures").iterdir())
    assert len(pictures) >= 3
    for picture in pictures:
        with Image.open(picture) as image:
            image.verify()
    text = (config_dir / "agent.toml").read_text()
    assert "# Seconds from TCP accept to a completed login" in text
    # The template writes out the defaults, not other values.
    assert (config.limits, config.blocklist, config.security) == (
        Limits(),
        BlocklistSettings(),
        Security(),
    )


def test_init_on_a_pi_comments_the_devices_out(run: Run, config_dir: Path) -> None:
    run.ok("init", "--config-dir", config_dir, "--hardware", "gpio", "--json")
    config = provision.read_config(config_dir)
    assert config.agent.hardware == "gpio"
    assert config.devices == {}
    text = (config_dir / "agent.toml").read_text()
    assert "# [[light]]" in text
    assert "# [sprinklers]" in text
    assert not (config_dir / "state" / "pictures").exists()


def _camera_backend_when_uncommented(config_dir: Path) -> str:
    text = (config_dir / "agent.toml").read_text()
    section = text[text.index("# [camera]") :]
    uncommented = "\n".join(line.removeprefix("# ") for line in section.splitlines())
    return str(tomllib.loads(uncommented)["camera"]["backend"])


@pytest.mark.parametrize(
    ("extra", "backend"),
    [((), "picamera2"), (("--camera", "test_pattern"), "test_pattern")],
)
def test_init_on_a_pi_camera_backend(
    run: Run, config_dir: Path, extra: tuple[str, ...], backend: str
) -> None:
    run.ok("init", "--config-dir", config_dir, "--hardware", "gpio", "--json", *extra)
    assert _camera_backend_when_uncommented(config_dir) == backend


def test_init_with_mock_pins_can_ask_for_the_real_camera(run: Run, config_dir: Path) -> None:
    run.ok("init", "--config-dir", config_dir, "--hardware", "mock", "--camera", "picamera2")
    assert provision.read_config(config_dir).devices["camera"]["backend"] == "picamera2"


def test_is_raspberry_pi(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.write_bytes(b"Raspberry Pi 4 Model B Rev 1.4\x00")
    assert provision.is_raspberry_pi(model)
    model.write_bytes(b"QEMU Virtual Machine\x00")
    assert not provision.is_raspberry_pi(model)
    assert not provision.is_raspberry_pi(tmp_path / "missing")


def test_init_refuses_to_overwrite(run: Run, config_dir: Path, pairing: dict[str, Any]) -> None:
    status, out, err = run("init", "--config-dir", config_dir)
    assert status == 1
    assert out == ""
    assert len(err.splitlines()) == 1
    assert "--force" in err
    assert pki.ca_fingerprint(config_dir) == pairing["fingerprint"]
    assert logs_in(config_dir, "homeassistant", pairing["secret"])

    again = run.json("init", "--config-dir", config_dir, "--force", "--json")
    assert again["fingerprint"] != pairing["fingerprint"]
    assert not logs_in(config_dir, "homeassistant", pairing["secret"])
    assert logs_in(config_dir, "homeassistant", again["secret"])


def test_init_prints_pairing_details(run: Run, config_dir: Path) -> None:
    out = run.ok("init", "--config-dir", config_dir, "--host", "10.0.0.7")
    store_secret_line = [line for line in out.splitlines() if "secret:" in line]
    assert len(store_secret_line) == 1
    secret = store_secret_line[0].split()[-1]
    assert logs_in(config_dir, "homeassistant", secret)
    assert pki.ca_fingerprint(config_dir) in out
    assert "10.0.0.7" in out
    assert "10.0.0.7" in pki.leaf_info(config_dir).ip_addresses


# --- check-config ---------------------------------------------------------------------------------


def test_check_config_ok(run: Run, config_dir: Path, pairing: dict[str, Any]) -> None:
    assert run.ok("check-config", "--config-dir", config_dir).strip() == "configuration OK"


BROKEN = """
[agent]
port = "eighty"
colour = "blue"

[[light]]
id = "porch"
pin = 17

[sprinklers]
[[sprinklers.zone]]
id = "lawn"
pin = 17
"""


def test_check_config_names_every_problem(
    run: Run, config_dir: Path, pairing: dict[str, Any]
) -> None:
    (config_dir / "agent.toml").write_text(BROKEN)
    status, out, err = run("check-config", "--config-dir", config_dir)
    assert status == 1
    assert "configuration OK" not in out
    lines = err.splitlines()
    assert "pi-agent: agent.port: expected an integer" in lines
    assert "pi-agent: agent.colour: extra keys not allowed" in lines
    assert "pi-agent: sprinklers.zone[0].pin: BCM pin 17 is already used by light[0].pin" in lines
    assert len(lines) == 3


def test_check_config_reports_toml_syntax(
    run: Run, config_dir: Path, pairing: dict[str, Any]
) -> None:
    (config_dir / "agent.toml").write_text('[agent]\nname = "x\n')
    status, _, err = run("check-config", "--config-dir", config_dir)
    assert status == 1
    assert err.startswith("pi-agent: agent.toml: TOML syntax error")
    assert "line 2" in err


def test_check_config_reports_loose_modes(
    run: Run, config_dir: Path, pairing: dict[str, Any]
) -> None:
    config_dir.chmod(0o755)
    (config_dir / "ca.key").chmod(0o644)
    (config_dir / "clients.json").chmod(0o640)
    status, _, err = run("check-config", "--config-dir", config_dir)
    assert status == 1
    lines = err.splitlines()
    assert len(lines) == 3
    assert any(f"chmod 700 {config_dir}" in line for line in lines)
    assert any(f"chmod 600 {config_dir / 'ca.key'}" in line for line in lines)
    assert any(f"chmod 600 {config_dir / 'clients.json'}" in line for line in lines)


def test_check_config_reports_a_broken_key(
    run: Run, config_dir: Path, pairing: dict[str, Any]
) -> None:
    (config_dir / "key.pem").write_text("not a key")
    status, _, err = run("check-config", "--config-dir", config_dir)
    assert status == 1
    assert "key.pem" in err


# --- pairing, renew-cert --------------------------------------------------------------------------


def test_pairing_shows_no_secret(run: Run, config_dir: Path, pairing: dict[str, Any]) -> None:
    secret = pairing["secret"]
    text = run.ok("pairing", "--config-dir", config_dir)
    assert pairing["fingerprint"] in text
    assert "gardenpi.local" in text
    assert "homeassistant (control)" in text
    details = run.json("pairing", "--config-dir", config_dir, "--json")
    assert details == {
        "host": "gardenpi.local",
        "port": 9443,
        "fingerprint": pairing["fingerprint"],
        "agent_id": pairing["agent_id"],
        "name": "Garden Pi",
        "clients": [{"client_id": "homeassistant", "role": "control"}],
    }
    for output in (text, json.dumps(details)):
        assert secret not in output
        assert normalize_secret(secret) not in output


def test_renew_cert_keeps_the_ca(run: Run, config_dir: Path, pairing: dict[str, Any]) -> None:
    serial = pki.load_leaf_cert(config_dir).serial_number
    assert "not renewed" in run.ok("renew-cert", "--config-dir", config_dir)
    assert pki.load_leaf_cert(config_dir).serial_number == serial
    assert "renewed" in run.ok("renew-cert", "--config-dir", config_dir, "--force")
    assert pki.load_leaf_cert(config_dir).serial_number != serial
    assert pki.ca_fingerprint(config_dir) == pairing["fingerprint"]


# --- client ---------------------------------------------------------------------------------------


def test_client_add_rotate_remove_list(run: Run, config_dir: Path, pairing: dict[str, Any]) -> None:
    added = run.json("client", "add", "dashboard", "--role", "viewer", "--config-dir", config_dir,
                     "--json")  # fmt: skip
    assert added["client_id"] == "dashboard"
    assert added["role"] == "viewer"
    assert added["fingerprint"] == pairing["fingerprint"]
    assert logs_in(config_dir, "dashboard", added["secret"])
    assert mode(config_dir / "clients.json") == 0o600

    listing = run.ok("client", "list", "--config-dir", config_dir)
    assert "dashboard" in listing
    assert "viewer" in listing
    assert "homeassistant" in listing
    assert added["secret"] not in listing

    status, out, _ = run("client", "rotate", "dashboard", "--config-dir", config_dir)
    assert status == 0
    assert "systemctl reload pi-agent" in out
    new_secret = next(line.split()[-1] for line in out.splitlines() if "secret:" in line)
    assert logs_in(config_dir, "dashboard", new_secret)
    assert not logs_in(config_dir, "dashboard", added["secret"])
    assert logs_in(config_dir, "homeassistant", pairing["secret"])

    assert "SIGHUP" in run.ok("client", "remove", "dashboard", "--config-dir", config_dir)
    assert not logs_in(config_dir, "dashboard", new_secret)
    listed = run.json("client", "list", "--config-dir", config_dir, "--json")
    assert [entry["client_id"] for entry in listed] == ["homeassistant"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["client", "add", "homeassistant", "--role", "admin"], "already exists"),
        (["client", "add", "Bad,Name", "--role", "admin"], "invalid client id"),
        (["client", "rotate", "nobody"], "unknown client 'nobody'"),
        (["client", "remove", "nobody"], "unknown client 'nobody'"),
    ],
)
def test_client_errors_are_one_line(
    run: Run, config_dir: Path, pairing: dict[str, Any], argv: list[str], message: str
) -> None:
    before = (config_dir / "clients.json").read_bytes()
    status, out, err = run(*argv, "--config-dir", config_dir)
    assert status == 1
    assert out == ""
    assert len(err.splitlines()) == 1
    assert message in err
    assert (config_dir / "clients.json").read_bytes() == before


def test_usage_errors_are_one_line(run: Run, config_dir: Path) -> None:
    status, _, err = run("client", "add", "x", "--role", "root", "--config-dir", config_dir)
    assert status == 2
    assert len(err.splitlines()) == 1
    assert "invalid choice: 'root'" in err


def test_commands_on_a_missing_config(run: Run, tmp_path: Path) -> None:
    for argv in (["pairing"], ["client", "list"], ["renew-cert"]):
        status, _, err = run(*argv, "--config-dir", tmp_path / "nothing")
        assert status == 1
        assert "pi-agent init" in err


# --- ctl ------------------------------------------------------------------------------------------


def test_ctl_needs_a_secret_outside_argv(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PI_AGENT_SECRET", raising=False)
    fingerprint = "AB" * 32
    status, _, err = run("ctl", "--host", "127.0.0.1", "--fingerprint", fingerprint, "state")
    assert status == 2
    assert "--secret-file" in err
    assert "PI_AGENT_SECRET" in err


def test_ctl_secret_file(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("ABCD-EFGH\n")
    path.chmod(0o600)
    assert ctl.read_secret(path) == "ABCD-EFGH"
    path.write_text("\n")
    with pytest.raises(CliError, match="empty"):
        ctl.read_secret(path)
    with pytest.raises(CliError, match="not found"):
        ctl.read_secret(tmp_path / "missing")


def test_ctl_params() -> None:
    assert ctl.parse_params(["brightness=128", "on=true", "name=porch", "x=[1,2]", "t=1.5"]) == {
        "brightness": 128,
        "on": True,
        "name": "porch",
        "x": [1, 2],
        "t": 1.5,
    }
    assert ctl.parse_params(["msg=a=b"]) == {"msg": "a=b"}
    with pytest.raises(CliError, match="expected key=value"):
        ctl.parse_params(["novalue"])


def test_ctl_bad_fingerprint_is_a_usage_error(run: Run) -> None:
    status, _, err = run("ctl", "--host", "h", "--fingerprint", "xyz", "state")
    assert status == 2
    assert "64 hexadecimal digits" in err


def test_ctl_cannot_connect(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        monkeypatch.setenv("PI_AGENT_SECRET", "ABCD-EFGH")
        status, _, err = run(
            "ctl", "--host", "127.0.0.1", "--port", str(port), "--fingerprint", "AB" * 32, "state"
        )
    assert status == ctl.EXIT_CANNOT_CONNECT
    assert len(err.splitlines()) == 1
    assert "cannot connect" in err


@pytest.mark.parametrize(
    ("error", "status", "line"),
    [
        (
            errors.Blocked(12.4),
            ctl.EXIT_BLOCKED,
            "blocked by the agent after failed logins; retry in 12 s",
        ),
        (
            errors.InvalidAuth("no"),
            ctl.EXIT_INVALID_AUTH,
            "invalid auth: the agent refused client id 'homeassistant' with this secret",
        ),
        (
            errors.CertificateMismatch("AA", "BB"),
            ctl.EXIT_CERTIFICATE_MISMATCH,
            "certificate mismatch: pinned CA fingerprint AA, agent presented BB",
        ),
        (
            errors.ServerAuthFailed("bad proof"),
            ctl.EXIT_SERVER_AUTH_FAILED,
            "the agent failed to prove it knows this client's verifier: not the real agent",
        ),
        (
            errors.CannotConnect("refused"),
            ctl.EXIT_CANNOT_CONNECT,
            "cannot connect to gardenpi.local:8765: refused",
        ),
        (
            errors.CommandError("refused", "rain delay"),
            ctl.EXIT_COMMAND_ERROR,
            "command failed: refused: rain delay",
        ),
        (
            errors.CommandError("forbidden", "admin only"),
            ctl.EXIT_COMMAND_ERROR,
            "command failed: forbidden: admin only",
        ),
        (
            errors.CommandError("device_error", "relay stuck"),
            ctl.EXIT_COMMAND_ERROR,
            "command failed: device_error: relay stuck",
        ),
        (errors.RequestTimeout("late"), ctl.EXIT_TIMEOUT, "the agent did not answer in time"),
        (errors.ProtocolError("bad frame"), ctl.EXIT_PROTOCOL_ERROR, "protocol error: bad frame"),
    ],
)
def test_ctl_failures_have_their_own_status(
    error: errors.PiSecureWsError, status: int, line: str
) -> None:
    """classify() gives the meaning and the line; ctl only maps the meaning to its status."""
    failure = ctl.failure(error, host="gardenpi.local", port=8765, client_id="homeassistant")
    assert (failure.status, failure.lines) == (status, [line])


# --- the modules behind the command line ---------------------------------------------------------


def test_templates_are_package_data() -> None:
    """init and install-service read their templates as package data: the wheel must carry each
    (pyproject's package-data globs), or an installed agent cannot be set up."""
    import fnmatch

    from pi_agent import config_template, service_files

    globs = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["tool"][
        "setuptools"
    ]["package-data"]["pi_agent"]
    for name in (
        config_template.CORE_TEMPLATE,
        config_template.DEVICES_TEMPLATE,
        service_files.UNIT_TEMPLATE,
    ):
        assert any(fnmatch.fnmatch(f"data/{name}", glob) for glob in globs), name
        assert "@" in config_template.template(name)


def test_a_leftover_placeholder_is_an_error() -> None:
    from pi_agent.config_template import fill

    assert fill("name = @NAME@\n", {"NAME": '"x"'}) == 'name = "x"\n'
    with pytest.raises(ValueError, match="@PORT@"):
        fill("name = @NAME@\nport = @PORT@\n", {"NAME": '"x"'})


def test_init_gives_typed_details_and_refuses_to_overwrite(config_dir: Path) -> None:
    agent = provision.init_agent(config_dir, host="10.0.0.7", port=9444, hardware="mock")
    assert agent.hardware == "mock"
    assert agent.pairing()["host"] == "10.0.0.7"
    assert agent.pairing().keys() == INIT_KEYS
    # An IP address goes into the certificate as one, not as a host name.
    assert "10.0.0.7" in pki.leaf_info(config_dir).ip_addresses
    assert provision.pairing(config_dir).fingerprint == agent.fingerprint
    with pytest.raises(ProvisionError, match="--force"):
        provision.init_agent(config_dir)


@pytest.mark.parametrize(
    ("module", "must_not_load"),
    [
        ("pi_agent.install_service", "pi_agent.cli"),
        ("pi_agent.provision", "pi_agent.cli"),
        ("pi_agent.config", "pi_agent.devices"),
    ],
)
def test_modules_do_not_reach_back(module: str, must_not_load: str) -> None:
    """The installer uses provision, not the command line; config knows no device module."""
    import subprocess
    import sys

    prefix = f"{must_not_load}."
    code = (
        f"import sys, {module}\n"
        f"print(sorted(m for m in sys.modules if (m + '.').startswith({prefix!r})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
