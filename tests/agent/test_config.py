"""agent.toml: the documented sections and defaults, and every problem named by its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from pi_agent.config import (
    AgentConfig,
    BlocklistSettings,
    ConfigError,
    Limits,
    Security,
)
from pi_agent.config import load_config as load_with
from pi_agent.devices.registry import NO_DEVICES, REGISTRY

AGENT_ID = "0123456789abcdef0123456789abcdef"

# The example from docs/architecture.md, without its device sections.
DOCUMENTED = """
[agent]
name = "Garden Pi"          # shown in Home Assistant
listen_host = "0.0.0.0"
port = 8765
advertise_host = "gardenpi.local"   # optional: the name clients use; in the leaf certificate
hardware = "mock"           # "mock" (gpiozero MockFactory, PWM pins) or "gpio" (default factory)
state_dir = "state"         # relative to the config dir unless absolute

[limits]
login_timeout = 5.0                 # seconds from TCP accept to a completed login
max_unauthenticated = 32
max_unauthenticated_per_source = 4
prelogin_max_frame = 4096
max_message_size = 16777216         # after login (picture uploads must fit)
messages_per_second = 50            # per session, burst 2x

[blocklist]
threshold = 5
base_delay = 1.0
max_delay = 900.0
decay = 900.0
max_entries = 4096

[security]
allowed_origins = []
"""


def write_config(config_dir: Path, text: str, agent_id: str | None = AGENT_ID) -> Path:
    config_dir.mkdir(mode=0o700, exist_ok=True)
    (config_dir / "agent.toml").write_text(text)
    if agent_id is not None:
        (config_dir / "agent_id").write_text(agent_id + "\n")
    return config_dir


def load(config_dir: Path) -> AgentConfig:
    # The core sections do not depend on any device module.
    return load_with(config_dir, NO_DEVICES)


def load_config(config_dir: Path) -> AgentConfig:
    # With every device module of the registry.
    return load_with(config_dir, REGISTRY)


def problems_of(config_dir: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(config_dir)
    return info.value.problems


def test_documented_example(tmp_path: Path) -> None:
    config = load(write_config(tmp_path / "c", DOCUMENTED))
    assert config.agent_id == AGENT_ID
    assert config.config_dir == tmp_path / "c"
    assert config.agent.name == "Garden Pi"
    assert config.agent.listen_host == "0.0.0.0"
    assert config.agent.port == 8765
    assert config.agent.advertise_host == "gardenpi.local"
    assert config.agent.hardware == "mock"
    assert config.agent.state_dir == tmp_path / "c" / "state"
    assert config.limits == Limits()  # the documented values are the defaults
    assert config.blocklist == BlocklistSettings(5, 1.0, 900.0, 900.0, 4096)
    assert config.security == Security(())
    assert config.devices == {}


def test_defaults_match_the_documented_values(tmp_path: Path) -> None:
    documented = load(write_config(tmp_path / "a", DOCUMENTED))
    empty = load(write_config(tmp_path / "b", ""))
    assert empty.limits == documented.limits
    assert empty.blocklist == documented.blocklist
    assert empty.security == documented.security
    assert empty.agent.port == 8765
    assert empty.agent.listen_host == "0.0.0.0"
    assert empty.agent.advertise_host is None
    assert empty.agent.state_dir == tmp_path / "b" / "state"


def test_values_are_read(tmp_path: Path) -> None:
    text = """
[agent]
state_dir = "/var/lib/pi-agent"
hardware = "gpio"
[limits]
login_timeout = 2
messages_per_second = 12.5
[security]
allowed_origins = ["https://homeassistant.local:8123", "http://10.0.0.2"]
"""
    config = load(write_config(tmp_path / "c", text))
    assert config.agent.state_dir == Path("/var/lib/pi-agent")
    assert config.agent.hardware == "gpio"
    assert config.limits.login_timeout == 2.0
    assert isinstance(config.limits.login_timeout, float)
    assert config.limits.messages_per_second == 12.5
    assert config.security.allowed_origins == (
        "https://homeassistant.local:8123",
        "http://10.0.0.2",
    )


def test_every_problem_is_named(tmp_path: Path) -> None:
    text = """
[agent]
port = "eighty"
hardware = "pwm"
colour = "blue"
[limits]
login_timeout = -1
max_unauthenticated = true
[blocklist]
base_delay = 10.0
max_delay = 5.0
[security]
allowed_origins = ["homeassistant.local/path"]
[lights]
pin = 3
"""
    problems = problems_of(write_config(tmp_path / "c", text))
    assert "agent.port: expected an integer" in problems
    assert "agent.hardware: expected 'mock' or 'gpio'" in problems
    assert "agent.colour: extra keys not allowed" in problems
    assert "limits.login_timeout: must be greater than 0" in problems
    assert "limits.max_unauthenticated: expected an integer" in problems
    assert "blocklist.max_delay: must be at least blocklist.base_delay" in problems
    assert any(p.startswith("security.allowed_origins[0]: ") for p in problems)
    assert any(p.startswith("lights: unknown section") for p in problems)
    assert len(problems) == 8


def test_hosts_and_origins_are_checked(tmp_path: Path) -> None:
    text = """
[agent]
advertise_host = "garden pi"
[security]
allowed_origins = ["https://ha.local:8123", "ftp://ha.local"]
"""
    assert problems_of(write_config(tmp_path / "c", text)) == [
        "agent.advertise_host: 'garden pi' is not a host name or IP address",
        "security.allowed_origins[1]: 'ftp://ha.local' is not an origin like "
        "https://homeassistant.local:8123",
    ]


def test_section_of_the_wrong_type(tmp_path: Path) -> None:
    problems = problems_of(write_config(tmp_path / "c", 'agent = "x"\n'))
    assert problems == ["agent: expected a dictionary"]


def test_out_of_range(tmp_path: Path) -> None:
    problems = problems_of(write_config(tmp_path / "c", "[agent]\nport = 70000\n"))
    assert problems == ["agent.port: must be at most 65535"]


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    problems = problems_of(write_config(tmp_path / "c", '[agent]\nname = "x"\nport 8765\n'))
    assert len(problems) == 1
    assert problems[0].startswith("agent.toml: TOML syntax error: ")
    assert "line 3" in problems[0]


def test_missing_files(tmp_path: Path) -> None:
    tmp_path.joinpath("c").mkdir()
    assert problems_of(tmp_path / "c")[0].startswith("agent.toml: missing")
    problems = problems_of(write_config(tmp_path / "d", "", agent_id=None))
    assert len(problems) == 1
    assert problems[0].startswith("agent_id: missing")


def test_bad_agent_id(tmp_path: Path) -> None:
    problems = problems_of(write_config(tmp_path / "c", "", agent_id="not an id!"))
    assert problems == ["agent_id: expected 1-64 letters, digits, '-' or '_'"]


def test_config_is_frozen(tmp_path: Path) -> None:
    config = load(write_config(tmp_path / "c", ""))
    with pytest.raises(AttributeError):
        config.agent.port = 1  # type: ignore[misc]


# --- device sections, validated by the modules in pi_agent.devices.DEVICE_MODULES ---------

DEVICES = """
[agent]
hardware = "mock"

[[light]]
id = "porch"
pin = 17

[[light]]
id = "garden"
pin = 18
dimmable = true

[sprinklers]
[sprinklers.pump]
pin = 25
[[sprinklers.zone]]
id = "porch"
pin = 22

[camera]
backend = "test_pattern"
"""


def test_device_sections_are_validated_by_their_modules(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path / "c", DEVICES))
    assert [light["id"] for light in config.devices["light"]] == ["porch", "garden"]
    assert config.devices["light"][1]["dimmable"] is True
    # Zones are not devices of their own: a zone may share a light's id.
    assert config.devices["sprinklers"]["zone"][0]["id"] == "porch"
    assert config.devices["camera"]["backend"] == "test_pattern"
    assert "frame" not in config.devices


def test_pin_used_twice(tmp_path: Path) -> None:
    text = DEVICES.replace("pin = 25", "pin = 17").replace("pin = 22", "pin = 18")
    with pytest.raises(ConfigError) as info:
        load_config(write_config(tmp_path / "c", text))
    assert info.value.problems == [
        "sprinklers.zone[0].pin: BCM pin 18 is already used by light[1].pin",
        "sprinklers.pump.pin: BCM pin 17 is already used by light[0].pin",
    ]


def test_device_problems_name_the_key(tmp_path: Path) -> None:
    text = DEVICES.replace("pin = 18", "pin = 99").replace('backend = "test_pattern"', "fps = 3")
    with pytest.raises(ConfigError) as info:
        load_config(write_config(tmp_path / "c", text))
    problems = info.value.problems
    assert len(problems) == 2
    assert problems[0].startswith("light[1].pin: ")
    assert "99" in problems[0]
    assert problems[1] == "camera.fps: extra keys not allowed"


@pytest.mark.parametrize("device_id", ["camera", "sprinklers", "system"])
def test_device_ids_are_unique_across_devices(tmp_path: Path, device_id: str) -> None:
    text = DEVICES.replace('id = "garden"', f'id = "{device_id}"')
    with pytest.raises(ConfigError) as info:
        load_config(write_config(tmp_path / "c", text))
    (problem,) = info.value.problems
    assert problem.startswith(f"light[1].id: id '{device_id}' is already used by the ")


def test_build_devices_puts_the_system_device_first(tmp_path: Path) -> None:
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    from pi_agent.devices import build_devices
    from pi_agent.devices.base import DeviceContext

    config = load_config(write_config(tmp_path / "c", DEVICES))
    factory = MockFactory(pin_class=MockPWMPin)
    ctx = DeviceContext(
        pin_factory=factory, state_dir=tmp_path / "state", mock=True, config_dir=tmp_path / "c"
    )
    (tmp_path / "state").mkdir()
    try:
        devices = build_devices(config, ctx)
        assert [d.id for d in devices] == ["system", "porch", "garden", "sprinklers", "camera"]
    finally:
        factory.close()


def test_upload_cap_must_fit_in_the_message_cap(tmp_path: Path) -> None:
    from pi_secure_ws_testing.agent import make_config_dir

    config_dir = tmp_path / "agent"
    make_config_dir(
        config_dir,
        "[limits]\nmax_message_size = 65536\n[frame]\nmax_upload_bytes = 1000000\n",
    )
    with pytest.raises(ConfigError) as err:
        load_config(config_dir)
    assert any(p.startswith("limits.max_message_size:") for p in err.value.problems)


def test_memory_budget_must_hold_the_largest_upload(tmp_path: Path) -> None:
    from pi_secure_ws_testing.agent import make_config_dir

    config_dir = tmp_path / "agent"
    make_config_dir(config_dir, "[limits]\nmemory_budget = 8388608\n[frame]\n")  # 8 MiB < 2x10 MiB
    with pytest.raises(ConfigError) as err:
        load_config(config_dir)
    assert any(p.startswith("limits.memory_budget:") for p in err.value.problems)
