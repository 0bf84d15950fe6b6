"""
End-to-end encryption keys over federation (spec: server-server
"End-to-End Encryption"): which users a request is for, and what another
homeserver answered to C{/user/keys/query} and C{/user/keys/claim}, kept
only as far as it is what was asked and is well signed.

A server could answer with keys of users it does not host, of devices
nobody asked for, or device keys not signed by their device: those are
dropped, so a client is never handed keys the owner did not publish
(client-server spec: device keys must be signed by the device's ed25519
key, and the C{user_id}/C{device_id} inside must match).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from ruma_tx.matrix.cross_signing import is_signed_by, parse_cross_signing_key, server_of, verify_key_for
from ruma_tx.matrix.device_keys import check_device_keys
from ruma_tx.matrix.device_lists import RemoteDevice, RemoteDeviceList, is_stream_id
from ruma_tx.matrix.errors import BadRequest, MatrixError
from ruma_tx.matrix.types import JsonDict


def by_server(user_ids: Sequence[str], local_server: str) -> tuple[list[str], dict[str, list[str]]]:
    """
    Split C{user_ids} into ours and, per other server, theirs (in the order
    given); an id with no server part is dropped.
    """
    local: list[str] = []
    remote: dict[str, list[str]] = {}
    for user_id in user_ids:
        server = server_of(user_id)
        if server == local_server:
            local.append(user_id)
        elif server is not None:
            remote.setdefault(server, []).append(user_id)
    return local, remote


def check_hosted(user_ids: Sequence[str], local_server: str) -> None:
    """
    A server asks us for our users' keys only.

    @raise MatrixError: 400 M_UNKNOWN for anyone else's (the spec says
        "must be local"; the code and message are Synapse's).
    """
    if any(server_of(user_id) != local_server for user_id in user_ids):
        raise BadRequest("M_UNKNOWN", "User is not hosted on this homeserver")


def _object(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def checked_device_keys(answer: Mapping[str, Any], asked: Mapping[str, Sequence[str]]
                        ) -> dict[str, dict[str, JsonDict]]:
    """
    The C{device_keys} of a C{/user/keys/query} answer, for the users
    C{asked} (all their devices when their list is empty, else only those
    listed), each device's keys naming that user and device and signed by
    the device's own ed25519 key. The server's C{unsigned} is kept.
    """
    found: dict[str, dict[str, JsonDict]] = {}
    answered = _object(answer.get("device_keys"))
    for user_id, device_ids in asked.items():
        devices = _object(answered.get(user_id))
        kept = found[user_id] = {}
        for device_id, keys in devices.items():
            if device_ids and device_id not in device_ids or not isinstance(keys, dict):
                continue
            try:
                check_device_keys(keys, user_id, device_id)
            except MatrixError:
                continue  # not this device's, or not signed by it
            kept[device_id] = keys
    return found


def checked_cross_signing_keys(answer: Mapping[str, Any], asked: Sequence[str]
                               ) -> tuple[dict[str, JsonDict], dict[str, JsonDict]]:
    """
    The C{master_keys} and C{self_signing_keys} of a C{/user/keys/query}
    answer for the users C{asked}: well-formed keys of that user and usage,
    and a self-signing key only when signed by the master key given with
    it (a client would refuse it anyway).
    """
    master_keys: dict[str, JsonDict] = {}
    self_signing_keys: dict[str, JsonDict] = {}
    masters, self_signings = _object(answer.get("master_keys")), _object(answer.get("self_signing_keys"))
    for user_id in asked:
        try:
            master = parse_cross_signing_key(masters.get(user_id), user_id, "master")
        except MatrixError:
            continue  # no master key: a self-signing key cannot be trusted either
        master_keys[user_id] = master.key_json
        try:
            self_signing = parse_cross_signing_key(self_signings.get(user_id), user_id, "self_signing")
        except MatrixError:
            continue
        if is_signed_by(self_signing.key_json, user_id, verify_key_for(master.key_id, master.public_key)):
            self_signing_keys[user_id] = self_signing.key_json
    return master_keys, self_signing_keys


def checked_signing_keys(user_id: str, master_key: object, self_signing_key: object,
                         known_master: JsonDict | None = None) -> tuple[JsonDict | None, JsonDict | None]:
    """
    A user's master and self-signing keys as another server gave them (in
    C{/user/devices} or C{m.signing_key_update}), each C{None} unless
    well-formed; the self-signing key only when signed by the master key
    given with it, else by C{known_master}.
    """
    answer = {"master_keys": {user_id: master_key or known_master},
              "self_signing_keys": {user_id: self_signing_key}}
    masters, self_signings = checked_cross_signing_keys(answer, [user_id])
    return (masters.get(user_id) if master_key is not None else None), self_signings.get(user_id)


def checked_device(user_id: str, device_id: str, keys: object) -> JsonDict | None:
    """C{keys} if they are this device's, signed by it; else C{None} (as a device without keys)."""
    if not isinstance(keys, dict):
        return None
    try:
        check_device_keys(keys, user_id, device_id)
    except MatrixError:
        return None
    return {k: v for k, v in keys.items() if k != "unsigned"}


def checked_user_devices(answer: Mapping[str, Any], user_id: str) -> RemoteDeviceList | None:
    """
    A C{/user/devices/{userId}} answer, as far as it is about C{user_id}
    and usable; C{None} when it is not (another user, no C{stream_id}).
    Devices whose keys are not their own keep no keys.
    """
    stream_id, devices = answer.get("stream_id"), answer.get("devices")
    if answer.get("user_id") != user_id or not is_stream_id(stream_id) or not isinstance(devices, list):
        return None
    found: dict[str, RemoteDevice] = {}
    for device in devices:
        device_id = _object(device).get("device_id")
        if not isinstance(device_id, str):
            continue
        name = device.get("device_display_name")
        found[device_id] = RemoteDevice(checked_device(user_id, device_id, device.get("keys")),
                                        name if isinstance(name, str) else None)
    master_key, self_signing_key = checked_signing_keys(user_id, answer.get("master_key"),
                                                        answer.get("self_signing_key"))
    return RemoteDeviceList(stream_id, found, master_key, self_signing_key)


def checked_one_time_keys(answer: Mapping[str, Any], asked: Mapping[str, Mapping[str, str]]
                          ) -> dict[str, dict[str, dict[str, object]]]:
    """
    The C{one_time_keys} of a C{/user/keys/claim} answer, for the devices
    C{asked} (C{user_id -> device_id -> algorithm}): one key of the asked
    algorithm per device, a key string or a key object with a C{key}
    string. (Their signatures are the claiming client's to check: the
    server does not know the device keys here.)
    """
    found: dict[str, dict[str, dict[str, object]]] = {}
    answered = _object(answer.get("one_time_keys"))
    for user_id, devices in asked.items():
        claimed = _object(answered.get(user_id))
        for device_id, algorithm in devices.items():
            for name, key in _object(claimed.get(device_id)).items():
                is_key = isinstance(key, str) or isinstance(key, dict) and isinstance(key.get("key"), str)
                if name.startswith(f"{algorithm}:") and is_key:
                    found.setdefault(user_id, {})[device_id] = {name: key}
                    break
    return found
