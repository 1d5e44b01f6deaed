"""The block list's arithmetic on a fake clock: back-off, cap, decay, bounds, persistence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pi_agent.blocklist import MAX_KNOWN_SOURCES, BlockList
from pi_agent.config import BlocklistSettings


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_backoff_doubles_from_the_threshold_and_is_capped() -> None:
    clock = Clock()
    blocks = BlockList(None, BlocklistSettings(), clock)
    durations = [blocks.record_failure("10.0.0.9") for _ in range(20)]
    assert durations[:4] == [None] * 4  # the first four failures only count
    assert durations[4:9] == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert max(d for d in durations if d) == 900.0  # never more than 15 minutes
    assert blocks.retry_after("10.0.0.9") == 900.0
    clock.now += 901
    assert blocks.retry_after("10.0.0.9") is None  # no permanent ban


def test_count_decays_after_quiet_time_and_success_clears() -> None:
    clock = Clock()
    blocks = BlockList(None, BlocklistSettings(), clock)
    for _ in range(4):
        blocks.record_failure("a")
    clock.now += 899
    assert blocks.failures("a") == 4
    clock.now += 2
    assert blocks.failures("a") == 0  # 15 minutes without failures: forgotten
    for _ in range(4):
        blocks.record_failure("b")
    blocks.record_success("b")
    assert blocks.failures("b") == 0
    assert blocks.record_failure("b") is None


def test_failures_are_per_source_never_per_client() -> None:
    blocks = BlockList(None, BlocklistSettings(), Clock())
    for _ in range(10):
        blocks.record_failure("attacker")
    assert blocks.retry_after("attacker") is not None
    assert blocks.retry_after("home-assistant-host") is None


def test_table_is_bounded_oldest_first() -> None:
    clock = Clock()
    blocks = BlockList(None, BlocklistSettings(max_entries=100), clock)
    for i in range(1000):
        clock.now += 0.001
        blocks.record_failure(f"10.0.{i // 256}.{i % 256}")
    assert len(blocks) == 100
    assert blocks.failures("10.0.0.0") == 0  # evicted
    assert blocks.failures("10.0.3.231") == 1  # the newest stays
    for i in range(MAX_KNOWN_SOURCES * 3):
        blocks.record_success(f"192.0.2.{i}")
    assert sum(blocks.is_known(f"192.0.2.{i}") for i in range(MAX_KNOWN_SOURCES * 3)) == (
        MAX_KNOWN_SOURCES
    )


def test_persists_across_restarts_and_survives_a_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "blocklist.json"
    clock = Clock()
    blocks = BlockList(path, BlocklistSettings(), clock)
    for _ in range(6):
        blocks.record_failure("198.51.100.7")
    blocks.record_success("192.0.2.1")
    blocks.save()
    assert path.stat().st_mode & 0o777 == 0o600
    again = BlockList(path, BlocklistSettings(), clock)
    assert again.retry_after("198.51.100.7") == 2.0
    assert again.is_known("192.0.2.1")
    path.write_text("{not json")
    fresh = BlockList(path, BlocklistSettings(), clock)  # logged and ignored, not a crash
    assert len(fresh) == 0
    path.write_text(json.dumps({"failures": {"x": {"failures": "many"}}}))
    assert len(BlockList(path, BlocklistSettings(), clock)) == 0


def test_a_blocked_source_is_told_once_per_block() -> None:
    clock = Clock()
    blocks = BlockList(None, BlocklistSettings(threshold=1), clock)
    blocks.record_failure("s")
    assert not blocks.already_notified("s")
    blocks.mark_notified("s")
    assert blocks.already_notified("s")  # further tries are dropped before TLS
    clock.now += 1.5
    assert not blocks.already_notified("s")
    blocks.record_failure("s")  # a new, longer block: told again
    assert not blocks.already_notified("s")


def test_flood_logging_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from pi_agent.server import ThrottledLog

    caplog.set_level(logging.INFO)
    log = ThrottledLog(logging.getLogger("flood-test"), burst=5, per_second=1, burst_per_source=3)
    for i in range(1000):
        log.log(logging.WARNING, "login failed %d", i)
    lines = [r.getMessage() for r in caplog.records if r.name == "flood-test"]
    assert 5 <= len(lines) <= 8  # the burst, and what refilled while the loop ran
    caplog.clear()
    log = ThrottledLog(logging.getLogger("flood-test"), burst=50, per_second=1, burst_per_source=3)
    for i in range(1000):
        log.log(logging.WARNING, "from one source %d", i, source="10.0.0.9")
    lines = [r.getMessage() for r in caplog.records if r.name == "flood-test"]
    assert 3 <= len(lines) <= 4  # that source's own burst, though the overall one has room
    log.log(logging.WARNING, "from another source", source="10.0.0.10")
    assert "from another source" in caplog.records[-1].getMessage()


def test_fresh_sources_cannot_evict_a_blocked_source() -> None:
    clock = Clock()
    settings = BlocklistSettings(max_entries=100, threshold=3)
    blocks = BlockList(None, settings, clock)
    for _ in range(4):
        blocks.record_failure("attacker")
    assert blocks.retry_after("attacker") is not None
    for i in range(5000):  # far more fresh sources than the table holds
        clock.now += 0.0001
        blocks.record_failure(f"10.1.{i // 256}.{i % 256}")
    assert len(blocks) == 100
    assert blocks.failures("attacker") == 4  # its count survives, so does its block
    assert blocks.retry_after("attacker") is not None


@pytest.mark.parametrize(
    "damage",
    [b"\xff\xfe\x80", b'{"failures": ' + b"[" * 100_000, b"[" * 100_000 + b"]" * 100_000],
    ids=["not-utf8", "truncated-nesting", "deeply-nested"],
)
def test_a_damaged_file_never_stops_the_start(tmp_path: Path, damage: bytes) -> None:
    path = tmp_path / "blocklist.json"
    path.write_bytes(damage)
    blocklist = BlockList(path, BlocklistSettings(), Clock())
    assert len(blocklist) == 0
    assert blocklist.retry_after("192.0.2.1") is None
