"""
Devices (spec: "Device management"): the rules for device ids and names.
"""
from __future__ import annotations

import re
import secrets

from ruma_tx.matrix.errors import BadRequest, invalid_param

#: The longest device display name: the spec sets no limit; Synapse's
#: C{MAX_DEVICE_DISPLAY_NAME_LEN} (synapse/handlers/device.py) is 100
#: characters, refused with 400 M_TOO_LARGE at registration, login and rename.
MAX_DEVICE_DISPLAY_NAME_LENGTH = 100

#: Synapse refuses longer device ids (400 M_INVALID_PARAM); the spec is silent.
MAX_DEVICE_ID_LENGTH = 512

# What a device id may hold: it becomes a C{device_id = ...} caveat of the
# token, whose grammar (ruma_tx.matrix.access_tokens) forbids spaces and controls.
_DEVICE_ID_RE = re.compile(r"[^\x00-\x20\x7f-\x9f\s\ud800-\udfff]+")


def check_device_display_name(display_name: str | None) -> None:
    """
    @raise MatrixError: 400 M_TOO_LARGE if longer than
        L{MAX_DEVICE_DISPLAY_NAME_LENGTH} characters (the spec sets no limit;
        this is Synapse's, with its error code); 400 M_INVALID_PARAM if it
        holds NUL or a lone surrogate.
    """
    if display_name is not None and len(display_name) > MAX_DEVICE_DISPLAY_NAME_LENGTH:
        raise BadRequest("M_TOO_LARGE",
            f"Device display name is too long (max {MAX_DEVICE_DISPLAY_NAME_LENGTH})",
        )
    if display_name is not None and re.search("[\x00\ud800-\udfff]", display_name):
        # PostgreSQL text holds neither.
        raise invalid_param("A device display name may not hold NUL or lone surrogates")


def check_requested_device_id(device_id: str | None) -> None:
    """
    Refuse a client-chosen device id that cannot name a device: empty,
    longer than L{MAX_DEVICE_ID_LENGTH}, or holding whitespace or control
    characters.

    @raise MatrixError: 400 M_INVALID_PARAM.
    """
    if device_id is None:
        return
    if len(device_id) > MAX_DEVICE_ID_LENGTH:
        raise invalid_param(f"device_id cannot be longer than {MAX_DEVICE_ID_LENGTH} characters")
    if not _DEVICE_ID_RE.fullmatch(device_id):
        raise invalid_param("device_id must be non-empty, without spaces or control characters")


def new_device_id() -> str:
    """Ten upper-case letters, as Synapse makes them."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return "".join(secrets.choice(alphabet) for _ in range(10))


