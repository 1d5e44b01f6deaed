"""The repair issue of an entry whose agent shows another certificate than the paired one.

Not fixable from Home Assistant: only re-pairing (reconfigure with the new fingerprint) makes the
entry connect again. Raised by a setup or a session that met the mismatch, removed by a setup that
connects with the pinned certificate, an unload, a removal, or disabling the entry. (Not named
``repairs.py``: Home Assistant loads that module as a platform of fix flows, which this is not.)
"""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_HOST
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN
from .protocol.errors import CertificateMismatch


def certificate_issue_id(entry: ConfigEntry[Any]) -> str:
    return f"certificate_mismatch_{entry.entry_id}"


@callback
def async_create_certificate_issue(
    hass: HomeAssistant, entry: ConfigEntry[Any], err: CertificateMismatch
) -> None:
    """Tell the user the agent now shows another certificate; we do not connect until re-paired."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        certificate_issue_id(entry),
        is_fixable=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key="certificate_mismatch",
        translation_placeholders={
            "title": entry.title,
            "host": str(entry.data[CONF_HOST]),
            "expected": err.expected,
            "actual": err.actual or "a certificate not signed by the paired certificate authority",
        },
    )


@callback
def async_delete_certificate_issue(hass: HomeAssistant, entry: ConfigEntry[Any]) -> None:
    ir.async_delete_issue(hass, DOMAIN, certificate_issue_id(entry))
