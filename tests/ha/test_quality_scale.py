"""quality_scale.yaml names every rule of Home Assistant's quality scale, and says why for each
rule it does not meet."""

from __future__ import annotations

from pathlib import Path

import yaml

QUALITY_SCALE = (
    Path(__file__).resolve().parents[2]
    / "custom_components"
    / "pi_secure_ws"
    / "quality_scale.yaml"
)
# The rules of Home Assistant core's script/hassfest/quality_scale.py (ALL_RULES), by tier.
RULES = {
    "bronze": [
        "action-setup", "appropriate-polling", "brands", "common-modules", "config-flow",
        "config-flow-test-coverage", "dependency-transparency", "docs-actions", "docs-conditions",
        "docs-high-level-description", "docs-installation-instructions",
        "docs-removal-instructions", "docs-triggers", "entity-event-setup", "entity-unique-id",
        "has-entity-name", "runtime-data", "test-before-configure", "test-before-setup",
        "unique-config-entry",
    ],
    "silver": [
        "action-exceptions", "config-entry-unloading", "docs-configuration-parameters",
        "docs-installation-parameters", "entity-unavailable", "integration-owner",
        "log-when-unavailable", "parallel-updates", "reauthentication-flow", "test-coverage",
    ],
    "gold": [
        "devices", "diagnostics", "discovery", "discovery-update-info", "docs-data-update",
        "docs-examples", "docs-known-limitations", "docs-supported-devices",
        "docs-supported-functions", "docs-troubleshooting", "docs-use-cases", "dynamic-devices",
        "entity-category", "entity-device-class", "entity-disabled-by-default",
        "entity-translations", "exception-translations", "icon-translations",
        "reconfiguration-flow", "repair-issues", "stale-devices",
    ],
    "platinum": ["async-dependency", "inject-websession", "strict-typing"],
}  # fmt: skip


def test_every_rule_is_listed_once_with_a_status() -> None:
    rules = yaml.safe_load(QUALITY_SCALE.read_text(encoding="utf-8"))["rules"]
    expected = {rule for tier in RULES.values() for rule in tier}
    assert len(expected) == 54
    assert set(rules) == expected, {
        "missing": expected - set(rules),
        "unknown": set(rules) - expected,
    }
    for name, value in rules.items():
        status = value if isinstance(value, str) else value["status"]
        assert status in {"done", "exempt", "todo"}, name
        if status != "done":
            # hassfest refuses an exempt rule without a comment; a todo needs one to be useful.
            assert isinstance(value, dict), f"{name}: {status} without a reason"
            assert len(value.get("comment", "")) > 20, f"{name}: {status} without a reason"


def test_nothing_left_to_do() -> None:
    rules = yaml.safe_load(QUALITY_SCALE.read_text(encoding="utf-8"))["rules"]
    todo = [
        name
        for name, value in rules.items()
        if isinstance(value, dict) and value["status"] == "todo"
    ]
    assert todo == []
