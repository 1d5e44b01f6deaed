"""Finding the header's gpiochip by label, against fake /sys and /dev trees laid out as each kernel
lays them out, and what the system device reports about the pin factory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pi_agent.devices.base import DeviceContext
from pi_agent.devices.system import create_system_device
from pi_agent.gpio_chip import find_header_chip, gpio_pin_factory, list_chips, mock_pin_factory


def legacy_chip(root: Path, parent: str, number: int, base: int, label: str, lines: int) -> None:
    """A controller as Raspberry Pi's kernels show it: the character device's node gpiochipN and
    the legacy sysfs entry gpio/gpiochipBASE are both children of the controller's device."""
    device = root / "sys/devices/platform" / parent
    (device / f"gpiochip{number}").mkdir(parents=True)
    legacy = device / "gpio" / f"gpiochip{base}"
    legacy.mkdir(parents=True)
    (legacy / "label").write_text(label + "\n")
    (legacy / "ngpio").write_text(f"{lines}\n")
    (legacy / "base").write_text(f"{base}\n")
    (legacy / "device").symlink_to(device)
    class_dir = root / "sys/class/gpio"
    class_dir.mkdir(parents=True, exist_ok=True)
    (class_dir / f"gpiochip{base}").symlink_to(legacy)
    dev = root / "dev"
    dev.mkdir(exist_ok=True)
    (dev / f"gpiochip{number}").touch()


def pi4(root: Path) -> Path:
    legacy_chip(root, "soc/fe200000.gpio", 0, 512, "pinctrl-bcm2711", 58)
    legacy_chip(root, "soc/soc:firmware/soc:firmware:gpio", 1, 570, "raspberrypi-exp-gpio", 8)
    return root


def pi5_before_renumbering(root: Path, *, model_chips: int = 4) -> Path:
    """Kernel 6.1/early 6.6: the SoC's own GPIO banks first, RP1 (the header) as gpiochip4."""
    for index in range(model_chips):
        legacy_chip(
            root,
            f"soc/107d50{index}500.gpio",
            index,
            512 + 32 * index,
            "gpio-brcmstb@107d508500",
            32,
        )
    legacy_chip(
        root, "axi/1000120000.pcie/1f00000000.rp1/1f000d0000.gpio", 4, 640, "pinctrl-rp1", 54
    )
    return root


def pi5_after_renumbering(root: Path) -> Path:
    """Later 6.6 kernels: RP1 is gpiochip0; Raspberry Pi OS adds a /dev/gpiochip4 symlink to it."""
    legacy_chip(
        root, "axi/1000120000.pcie/1f00000000.rp1/1f000d0000.gpio", 0, 571, "pinctrl-rp1", 54
    )
    for index in range(4):
        legacy_chip(
            root, f"soc/107d50{index}500.gpio", 10 + index, 512 + 15 * index, "gpio-brcmstb", 15
        )
    (root / "dev/gpiochip4").symlink_to("gpiochip0")
    return root


def test_pi4_header_is_the_bcm2711_chip(tmp_path: Path) -> None:
    chip = find_header_chip(pi4(tmp_path))
    assert chip is not None
    assert (chip.number, chip.label, chip.lines, chip.device) == (
        0,
        "pinctrl-bcm2711",
        58,
        "/dev/gpiochip0",
    )
    assert [c.label for c in list_chips(tmp_path)] == ["pinctrl-bcm2711", "raspberrypi-exp-gpio"]


def test_pi5_before_renumbering_finds_rp1_at_gpiochip4(tmp_path: Path) -> None:
    chip = find_header_chip(pi5_before_renumbering(tmp_path))
    assert chip is not None
    assert (chip.number, chip.label) == (4, "pinctrl-rp1")


def test_pi5_after_renumbering_finds_rp1_at_gpiochip0(tmp_path: Path) -> None:
    # gpiozero would open gpiochip4 here, which is right only because of the OS's symlink.
    chip = find_header_chip(pi5_after_renumbering(tmp_path))
    assert chip is not None
    assert (chip.number, chip.label) == (0, "pinctrl-rp1")


def test_pi5_after_renumbering_without_the_symlink(tmp_path: Path) -> None:
    pi5_after_renumbering(tmp_path)
    (tmp_path / "dev/gpiochip4").unlink()
    chip = find_header_chip(tmp_path)
    assert chip is not None
    assert chip.device == "/dev/gpiochip0"


def test_legacy_entry_below_the_gpio_device(tmp_path: Path) -> None:
    """The layout where the legacy entry hangs below the gpiochipN device itself."""
    gdev = tmp_path / "sys/devices/platform/soc/fe200000.gpio/gpiochip2"
    legacy = gdev / "gpio/gpiochip512"
    legacy.mkdir(parents=True)
    (legacy / "label").write_text("pinctrl-bcm2835\n")
    (tmp_path / "sys/class/gpio").mkdir(parents=True)
    (tmp_path / "sys/class/gpio/gpiochip512").symlink_to(legacy)
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev/gpiochip2").touch()
    chip = find_header_chip(tmp_path)
    assert chip is not None
    assert (chip.number, chip.lines) == (2, None)


def test_chip_entries_numbered_like_the_device(tmp_path: Path) -> None:
    entry = tmp_path / "sys/class/gpio/chip3"
    entry.mkdir(parents=True)
    (entry / "label").write_text("pinctrl-rp1\n")
    (entry / "ngpio").write_text("54\n")
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev/gpiochip3").touch()
    chip = find_header_chip(tmp_path)
    assert chip is not None
    assert (chip.number, chip.lines) == (3, 54)


def test_no_header_chip(tmp_path: Path) -> None:
    assert find_header_chip(tmp_path) is None  # no /sys at all
    legacy_chip(tmp_path, "soc/gpio", 0, 512, "gpio-mockup-A", 8)
    assert find_header_chip(tmp_path) is None  # a chip, but not a Pi header's
    assert [c.label for c in list_chips(tmp_path)] == ["gpio-mockup-A"]


def test_label_without_a_device_node_is_not_used(tmp_path: Path) -> None:
    pi4(tmp_path)
    (tmp_path / "dev/gpiochip0").unlink()
    assert find_header_chip(tmp_path) is None


def test_a_controller_with_several_chips_is_not_guessed(tmp_path: Path) -> None:
    legacy_chip(tmp_path, "soc/fe200000.gpio", 0, 512, "pinctrl-bcm2711", 58)
    (tmp_path / "sys/devices/platform/soc/fe200000.gpio/gpiochip1").mkdir()
    assert find_header_chip(tmp_path) is None


def test_gpio_factory_reports_the_chip_it_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    monkeypatch.delenv("LG_WD", raising=False)
    root = pi5_before_renumbering(tmp_path / "root")
    work = tmp_path / "state"
    work.mkdir()
    before = Path.cwd()
    choice = gpio_pin_factory(work, root=root)
    assert Path.cwd() == before
    assert choice.details["chip"] == "/dev/gpiochip4"
    assert choice.details["chip_label"] == "pinctrl-rp1"
    assert choice.details["found_by"] == "label"
    # No Pi here: lgpio is missing or finds no Pi, and the agent says so instead of failing.
    assert choice.factory is None
    assert choice.details["factory"] is None
    assert "lgpio" in choice.details["error"]
    assert os.environ["LG_WD"] == str(work)


def test_gpiozero_pin_factory_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "rpigpio")
    choice = gpio_pin_factory(tmp_path, root=pi4(tmp_path / "root"))
    assert choice.factory is None
    assert choice.details["factory"] == "rpigpio"
    assert choice.details["found_by"] == "GPIOZERO_PIN_FACTORY"


def test_system_device_shows_the_pin_factory(tmp_path: Path) -> None:
    pins = mock_pin_factory()
    ctx = DeviceContext(
        pin_factory=pins.factory,
        state_dir=tmp_path,
        mock=True,
        config_dir=tmp_path,
        gpio=pins.details,
    )
    device = create_system_device(ctx, root=tmp_path)
    assert device.describe()["capabilities"]["gpio"] == {"factory": "MockFactory", "chip": None}
