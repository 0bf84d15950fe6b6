"""
Device lists over federation (server-server spec: "Device Management"):
which of our user's devices other servers must hear of again, and whether
an update another server sends follows what we hold of its user's list.

Our side. Each local user has a stream of C{m.device_list_update}s, one
per changed device, numbered 1, 2, 3... (C{stream_id}, per user, as the
spec allows: "unique for a given user_id"); each names the one before it
in C{prev_id}. What other servers were last told of a device is kept as a
digest of its keys, so any change of what they would see (new keys, a
new self-signing signature, a deletion) is sent once, whatever caused it.

Their side. L{update_action} decides, from the C{stream_id} of the last
update applied (or of the list fetched with C{/user/devices}), whether a
received update is applied, ignored as already known, or shows a gap.
"""
from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from typing import Mapping, Sequence, TypeGuard

from canonicaljson import encode_canonical_json
from unpaddedbase64 import encode_base64

from ruma_tx.matrix.types import JsonDict


#: The largest integer canonical JSON allows; stream ids beyond it are refused.
MAX_STREAM_ID = 2**53 - 1


def is_stream_id(value: object) -> TypeGuard[int]:
    """Whether another server's C{stream_id} (or C{prev_id} entry) is usable: an integer in 0..2**53-1."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_STREAM_ID


def digest(value: object) -> str:
    """A digest of a JSON value (its canonical form's SHA-256)."""
    return encode_base64(hashlib.sha256(encode_canonical_json(value)).digest())


@dataclass(frozen=True)
class DeviceChange:
    """
    A device other servers must hear of again.

    @ivar keys: its keys as they see them; C{None}: it was deleted.
    """

    device_id: str
    keys: JsonDict | None

    @property
    def keys_digest(self) -> str | None:
        return None if self.keys is None else digest(self.keys)


def device_changes(current: Mapping[str, JsonDict], announced: Mapping[str, str]) -> list[DeviceChange]:
    """
    The devices of C{current} (device id to keys) whose keys differ from
    the C{announced} digests, then the announced devices that are gone,
    each in device id order.
    """
    changed = [DeviceChange(device_id, keys) for device_id, keys in sorted(current.items())
               if announced.get(device_id) != digest(keys)]
    gone = [DeviceChange(device_id, None) for device_id in sorted(announced) if device_id not in current]
    return changed + gone


def signing_keys_digest(master_key: JsonDict | None, self_signing_key: JsonDict | None) -> str | None:
    """What other servers know of the master and self-signing keys (C{None}: no master key)."""
    if master_key is None:
        return None
    return digest([master_key, self_signing_key])


def prev_ids(stream_id: int) -> list[int]:
    """The C{prev_id} of update C{stream_id} of our per-user sequence (the first names none)."""
    return [stream_id - 1] if stream_id > 1 else []


class UpdateAction(enum.Enum):
    APPLY = "apply"
    IGNORE = "ignore"
    RESYNC = "resync"


def update_action(known: int | None, stream_id: int, prev: Sequence[int]) -> UpdateAction:
    """
    What to do with an update C{stream_id} following C{prev}, given the
    C{stream_id} of the last update applied or of the list fetched
    (C{known}; C{None}: nothing held).

    An update at or before C{known} is already part of what we hold. One
    whose predecessors are all at or before C{known} applies on top of it:
    anything they led to is in a list fetched at C{known}, or was applied.
    A predecessor after C{known} was never received: the list must be
    fetched again (spec: "it must resynchronise its list"); so must it when
    nothing is held, or when C{prev} is empty (the sender started over; as
    Synapse).
    """
    if known is None:
        return UpdateAction.RESYNC
    if stream_id <= known:
        return UpdateAction.IGNORE
    if prev and all(p <= known for p in prev):
        return UpdateAction.APPLY
    return UpdateAction.RESYNC


@dataclass(frozen=True)
class RemoteDevice:
    """
    A device of another server's user, as its server described it.

    @ivar keys: its C{DeviceKeys} (checked: this device's, signed by it),
        C{None} when it has none.
    """

    keys: JsonDict | None
    display_name: str | None = None


@dataclass(frozen=True)
class RemoteDeviceList:
    """
    Another server's user's devices and cross-signing keys, at C{stream_id}
    of that user's update sequence.
    """

    stream_id: int
    devices: Mapping[str, RemoteDevice]
    master_key: JsonDict | None = None
    self_signing_key: JsonDict | None = None

    def device_keys(self, asked: Sequence[str]) -> dict[str, JsonDict]:
        """
        The keys of the devices C{asked} (all when empty) that have some, as
        C{/keys/query} gives them: with the server's C{unsigned}, where the
        display name is.
        """
        found: dict[str, JsonDict] = {}
        for device_id, device in self.devices.items():
            if device.keys is None or asked and device_id not in asked:
                continue
            unsigned = {} if device.display_name is None else {"device_display_name": device.display_name}
            found[device_id] = {**device.keys, "unsigned": unsigned}
        return found
