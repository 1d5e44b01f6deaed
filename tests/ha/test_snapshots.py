"""Every platform's entities, pinned as Home Assistant core pins them: syrupy snapshots.

One test per platform, against a real agent with every device kind. The snapshots (under
``snapshots/``) hold each entity's registry entry and state, so a changed name, unique id,
category, unit, feature or value shows in review. Run ``pytest --snapshot-update`` to accept a
change on purpose.

Kept deterministic: the Pi's readings come from a fixed /proc and /sys tree (the real system
device, reading other files), the random agent id is replaced in unique ids, and what is random
or a clock by nature (access tokens, the free disk space, when the picture was last shown) is
replaced by a placeholder.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, State
from homeassistant.helpers import entity_registry as er
from pi_secure_ws_testing.agent import RunningAgent
from pi_secure_ws_testing.agent_toml import FULL_TOML
from pi_secure_ws_testing.ha import agent_id
from PIL import Image
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion

from custom_components.pi_secure_ws.const import PLATFORMS
from pi_agent.devices.system import SystemDevice

# A Pi 4's readings (the agent's own system tests use the same shapes).
PI_FILES = {
    "proc/uptime": "12345.67 40000.00\n",
    "proc/loadavg": "0.52 0.34 0.20 1/234 5678\n",
    "proc/meminfo": "MemTotal:        3884328 kB\nMemFree:          512000 kB\n"
    "MemAvailable:    2942920 kB\n",
    "proc/net/wireless": "Inter-| sta-|   Quality        |   Discarded packets\n"
    " face | tus | link level noise |  nwid  crypt   frag  retry   misc | beacon | 22\n"
    " wlan0: 0000   58.  -52.  -256        0      0      0      0     12        0\n",
    "sys/class/thermal/thermal_zone0/type": "cpu-thermal\n",
    "sys/class/thermal/thermal_zone0/temp": "48312\n",
    "sys/devices/platform/soc/soc:firmware/get_throttled": "50005\n",
}

# What the host decides, not the integration: the free space of the disk the test runs on.
HOST_VALUES = {"sensor.test_pi_free_disk_space"}
# A moment: when the frame's picture was last shown.
CLOCK_VALUES = {"image.test_pi_current_picture"}
TOKEN = re.compile(r"token=[0-9a-f]+")


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Home Assistant's serializer (registry ids and times as ANY) and its ``snapshots/`` folder.

    The plugin's own fixture of that name loses to syrupy's, loaded after it.
    """
    return snapshot.use_extension(HomeAssistantSnapshotExtension)


@pytest.fixture(autouse=True)
def pi_readings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The agent's system device reads a fixed tree instead of this host's /proc and /sys."""
    root = tmp_path / "root"
    for relative, text in PI_FILES.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    original = SystemDevice.__init__

    def reading_the_tree(self: SystemDevice, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **{**kwargs, "root": root, "vcgencmd": ""})

    monkeypatch.setattr(SystemDevice, "__init__", reading_the_tree)


@pytest.fixture
def agent_toml(tmp_path: Path, headless_display: None) -> str:
    """Every device kind: the conftest's lights, sprinklers and camera, and a picture frame
    with an album (its interval outlasts the test: the picture shown stays the first)."""
    pictures = tmp_path / "pictures"
    (pictures / "garden").mkdir(parents=True)
    for index, name in enumerate(("first.jpg", "second.jpg", "garden/third.jpg")):
        Image.new("RGB", (32, 24), (80 * index, 0, 0)).save(pictures / name)
    frame = f'[frame]\nfolder = "{pictures}"\ninterval = 86400\nwidth = 32\nheight = 24\n'
    return f"{FULL_TOML}\n{frame}"


@pytest.fixture
def agent_clients() -> dict[str, str]:
    # Admin: every entity any role gets (the restart button too).
    return {"homeassistant": "admin"}


NUMBER = re.compile(r"-?\d+\.\d+")


def _scrubbed_state(state: State) -> State:
    value = state.state
    if state.entity_id in HOST_VALUES:
        value = "<host reading>"
    elif state.entity_id in CLOCK_VALUES:
        value = "<moment>"
    elif NUMBER.fullmatch(value):
        # 2025.4 rounds a sensor's state to its suggested precision, 2026 does not: 4 places.
        value = f"{float(value):.4f}".rstrip("0").rstrip(".")
    # Home Assistant 2026 keys attributes by StrEnum members; str() is the name either way.
    attributes = {
        str(key): TOKEN.sub("token=<token>", item) if isinstance(item, str) else item
        for key, item in state.attributes.items()
    }
    # 2026 adds a valve's is_closed, which the state already says.
    attributes.pop("is_closed", None)
    if "access_token" in attributes:
        attributes["access_token"] = "<token>"
    return State(state.entity_id, value, attributes)


# What the integration decides about a registry entry. The entry itself gains fields from one
# Home Assistant release to the next (2026 added object_id_base, suggested_object_id and list
# aliases); the snapshots hold what is ours, so they are the same on every release we test.
ENTRY_FIELDS = (
    "entity_id",
    "unique_id",
    "platform",
    "has_entity_name",
    "original_name",
    "translation_key",
    "original_device_class",
    "original_icon",
    "entity_category",
    "disabled_by",
    "hidden_by",
    "capabilities",
    "supported_features",
    "unit_of_measurement",
)


def _pinned_entry(registry_entry: er.RegistryEntry, the_agent: str) -> dict[str, Any]:
    pinned = {name: getattr(registry_entry, name) for name in ENTRY_FIELDS}
    pinned["unique_id"] = registry_entry.unique_id.replace(the_agent, "<agent_id>", 1)
    if registry_entry.capabilities is not None:
        pinned["capabilities"] = {str(key): v for key, v in registry_entry.capabilities.items()}
    return pinned


def _platform_entries(
    hass: HomeAssistant, entry: MockConfigEntry, platform: Platform
) -> Iterator[er.RegistryEntry]:
    registry = er.async_get(hass)
    entries = er.async_entries_for_config_entry(registry, entry.entry_id)
    yield from sorted(
        (registry_entry for registry_entry in entries if registry_entry.domain == platform),
        key=lambda registry_entry: registry_entry.entity_id,
    )


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_entities(
    hass: HomeAssistant,
    agent: RunningAgent,
    loaded_entry: MockConfigEntry,
    snapshot: SnapshotAssertion,
    platform: Platform,
) -> None:
    entries = list(_platform_entries(hass, loaded_entry, platform))
    assert entries, f"no {platform} entity: the agent has every device kind"
    the_agent = agent_id(agent)
    # The registry entries as setup made them: which start disabled is part of what is pinned.
    for registry_entry in entries:
        assert registry_entry.unique_id.startswith(f"{the_agent}_")
        pinned = _pinned_entry(registry_entry, the_agent)
        assert pinned == snapshot(name=f"{registry_entry.entity_id}-entry")
    # Then every one enabled, so that each has a state to pin.
    registry = er.async_get(hass)
    disabled = [item.entity_id for item in entries if item.disabled_by is not None]
    for entity_id in disabled:
        registry.async_update_entity(entity_id, disabled_by=None)
    if disabled:
        assert await hass.config_entries.async_reload(loaded_entry.entry_id)
        await hass.async_block_till_done()
    for registry_entry in entries:
        state = hass.states.get(registry_entry.entity_id)
        assert state is not None, f"{registry_entry.entity_id} has no state"
        assert _scrubbed_state(state) == snapshot(name=f"{registry_entry.entity_id}-state")
