"""Client secrets: 256 random bits, written so they are easy to read out and paste."""

from __future__ import annotations

import base64
import re
import secrets

SECRET_BITS = 256
# Base32 without padding: five bits a character, rounded up.
SECRET_LENGTH = -(-SECRET_BITS // 5)
_SECRET = re.compile(rf"[A-Z2-7]{{{SECRET_LENGTH}}}")


def generate_secret() -> str:
    """Return a new secret: base32 (no padding) in dash-separated groups of four.

    Base32 has no look-alike punctuation, and dashes are ignored when the secret is read back, so a
    secret survives being retyped, pasted with spaces, or pasted in lower case.
    """
    raw = base64.b32encode(secrets.token_bytes(SECRET_BITS // 8)).decode().rstrip("=")
    return "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))


def normalize_secret(text: str) -> str:
    """The canonical form SCRAM uses: upper case, without dashes or white space."""
    return "".join(ch for ch in text.upper() if ch.isalnum())


def is_well_formed_secret(text: str) -> bool:
    """Whether ``text`` can be a secret ``generate_secret`` made, ignoring spaces, dashes and case.

    Lets a client refuse a typo before it is sent: a wasted login counts towards the agent's block
    list. Stricter than ``normalize_secret`` on purpose: other punctuation is a typo, not a format.
    """
    compact = re.sub(r"[\s-]", "", text).upper()
    return _SECRET.fullmatch(compact) is not None
