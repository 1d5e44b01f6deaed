"""The small persisted JSON state: coalesced atomic writes, survival of a corrupt file."""

from __future__ import annotations

import asyncio
import json
import logging
import stat
from pathlib import Path

import pytest

from pi_agent.state_store import StateStore


def test_set_outside_the_loop_writes_at_once(tmp_path: Path) -> None:
    path = tmp_path / "state" / "devices.json"
    store = StateStore(path)
    store.set("light_porch", {"on": True, "brightness": 200})
    assert json.loads(path.read_text()) == {"light_porch": {"on": True, "brightness": 200}}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert StateStore(path).get("light_porch") == {"on": True, "brightness": 200}
    assert StateStore(path).get("missing", 7) == 7


async def test_burst_is_coalesced_into_one_delayed_write(tmp_path: Path) -> None:
    path = tmp_path / "devices.json"
    store = StateStore(path, write_delay=0.05)
    for level in range(100):
        store.set("level", level)
    assert not path.exists()  # nothing written yet: the burst is still going on
    for _ in range(100):
        await asyncio.sleep(0.02)
        if path.exists():
            break
    assert json.loads(path.read_text()) == {"level": 99}


async def test_flush_writes_pending_changes_now(tmp_path: Path) -> None:
    path = tmp_path / "devices.json"
    store = StateStore(path, write_delay=60)
    store.set("frame", {"index": 3})
    assert not path.exists()
    assert store.flush() is True
    assert json.loads(path.read_text()) == {"frame": {"index": 3}}
    store.delete("frame")
    store.flush()
    assert json.loads(path.read_text()) == {}


def test_corrupt_file_is_kept_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "devices.json"
    path.write_text('{"light": tru')
    with caplog.at_level(logging.WARNING):
        store = StateStore(path)
    assert store.get("light") is None
    assert (tmp_path / "devices.json.corrupt").read_text() == '{"light": tru'
    assert "corrupt" in caplog.text
    store.set("light", 1)
    assert json.loads(path.read_text()) == {"light": 1}


def test_non_object_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "devices.json"
    path.write_text("[1, 2]")
    assert StateStore(path).get("x") is None
    assert (tmp_path / "devices.json.corrupt").exists()


def test_values_must_be_json(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.json")
    with pytest.raises(TypeError):
        store.set("x", object())
    with pytest.raises(ValueError):
        store.set("x", float("nan"))
    assert store.get("x") is None


def test_failed_write_keeps_changes_pending(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    store = StateStore(blocker / "s.json")
    store.set("x", 1)  # cannot be written: its directory is a file
    assert store.flush() is False
    assert store.get("x") == 1


@pytest.mark.parametrize(
    "damage",
    [
        b"\xff\xfe\x00garbage\x80",  # not UTF-8: a torn write on an SD card
        b"[" * 100_000 + b"]" * 100_000,  # nested past the parser's recursion limit
        b'{"a": ' + b"\x00" * 64,  # zero-filled tail after a power cut
        b"",
    ],
    ids=["not-utf8", "deeply-nested", "zero-filled", "empty"],
)
def test_any_damaged_file_is_set_aside_never_raised(
    tmp_path: Path, damage: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "devices.json"
    path.write_bytes(damage)
    store = StateStore(path)
    assert store.get("anything") is None
    assert (tmp_path / "devices.json.corrupt").read_bytes() == damage
    assert not path.exists()
    assert "corrupt" in caplog.text
