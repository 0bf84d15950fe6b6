"""
A user's devices: listing, renaming and deleting them (L{DeviceManager}),
and their last_seen_ts and last_seen_ip kept without a write per request
(L{DeviceActivity}).
"""
from __future__ import annotations

from typing import Awaitable, Callable

from ruma_tx.logs import logger
from ruma_tx.matrix.devices import check_device_display_name
from ruma_tx.matrix.errors import not_found
from ruma_tx.matrix.types import JsonDict
from ruma_tx.matrix.uia import UiaRequest
from ruma_tx.services.clock import Clock, Periodic, now_ms
from ruma_tx.services.guard import Requester
from ruma_tx.services.ports.accounts import Device, Devices
from ruma_tx.services.sessions import SessionIssuer
from ruma_tx.services.uia import PASSWORD, UserInteractiveAuth

log = logger(__name__)

#: Seconds between writes of the batched last-seen times.
FLUSH_INTERVAL_S = 10.0


class DeviceActivity:
    """
    Collects the last time and address each device was seen, in memory,
    and writes them in one statement every L{FLUSH_INTERVAL_S}. The pending
    map holds at most one entry per active device and is emptied each flush.
    """

    def __init__(self, devices: Devices, clock: Clock) -> None:
        self._devices = devices
        self._clock = clock
        self._pending: dict[tuple[str, str], tuple[int, str]] = {}
        self._flushing = Periodic(clock, FLUSH_INTERVAL_S, self.flush, last=self.flush)

    def start(self) -> None:
        self._flushing.start()

    async def stop(self) -> None:
        await self._flushing.stop()

    def record(self, user_id: str, device_id: str, ip: str) -> None:
        self._pending[(user_id, device_id)] = (now_ms(self._clock), ip)

    def pending(self, user_id: str, device_id: str) -> tuple[int, str] | None:
        """The not yet written C{(ts, ip)} of a device, for reads."""
        return self._pending.get((user_id, device_id))

    async def flush(self) -> None:
        batch, self._pending = self._pending, {}
        rows = [(user, device, ts, ip) for (user, device), (ts, ip) in batch.items()]
        try:
            await self._devices.record_last_seen(rows)
        except Exception:
            log.failure("could not store device activity")


class DeviceManager:
    """
    The device management use cases: listing, renaming and deleting the
    requester's own devices (or, for the admin API, any user's: the
    C{*_of} methods). Deleting a device revokes its tokens at once.

    @param devices: the L{ruma_tx.storage.devices.DeviceStore}.
    @param activity: the L{DeviceActivity}, whose not yet written times
        are merged into what is read.
    @param uia: the L{ruma_tx.services.uia.UserInteractiveAuth} that guards deletion.
    @param sessions: the L{ruma_tx.services.sessions.SessionIssuer}, told of
        revoked tokens.
    """

    def __init__(self, *, devices: Devices, activity: DeviceActivity, uia: UserInteractiveAuth,
                 sessions: SessionIssuer, server_name: str,
                 device_changed: Callable[[str], Awaitable[None]]) -> None:
        """
        @param device_changed: C{async (user_id)}, after one of the user's
            devices was renamed or deleted (their device list changed).
        """
        self._device_changed = device_changed
        self._devices = devices
        self._activity = activity
        self._uia = uia
        self._sessions = sessions
        self._server_name = server_name

    async def list_devices(self, requester: Requester) -> list[dict]:
        """The requester's devices, as the spec's C{Device} objects."""
        return await self.devices_of(requester.user_id)

    async def devices_of(self, user_id: str) -> list[dict]:
        return [self._describe(device) for device in await self._devices.get_devices(user_id)]

    async def get_device(self, requester: Requester, device_id: str) -> dict:
        """
        One of the requester's devices.

        @raise MatrixError: 404 M_NOT_FOUND if the requester has no such device.
        """
        return await self.device_of(requester.user_id, device_id)

    async def device_of(self, user_id: str, device_id: str) -> dict:
        """@raise MatrixError: 404 M_NOT_FOUND if the user has no such device."""
        device = await self._devices.get_device(user_id, device_id)
        if device is None:
            raise not_found("Unknown device")
        return self._describe(device)

    async def update_device(self, requester: Requester, device_id: str, display_name: str | None) -> None:
        """
        Rename one of the requester's devices; C{None} leaves the name as it
        is (the spec: "If not given, the display name is unchanged"; Synapse
        also treats C{null} so).

        @raise MatrixError: 404 M_NOT_FOUND if the requester has no such
            device (only application services may create devices, spec
            v1.17), 400 M_TOO_LARGE if the name is too long.
        """
        await self.rename_device_of(requester.user_id, device_id, display_name)

    async def rename_device_of(self, user_id: str, device_id: str, display_name: str | None) -> None:
        """L{update_device} of any user's device."""
        check_device_display_name(display_name)
        if display_name is None:
            found = await self._devices.get_device(user_id, device_id) is not None
        else:
            found = await self._devices.set_display_name(user_id, device_id, display_name)
            if found:
                await self._device_changed(user_id)
        if not found:
            raise not_found("Unknown device")

    async def delete_devices(self, requester: Requester, body: dict, device_ids: list[str], *,
                             request: UiaRequest) -> None:
        """
        Delete some of the requester's devices and revoke their tokens,
        once the request's C{auth} proves the password again (the spec's
        security considerations ask for more than the access token).

        Ids of devices the requester does not have are ignored: the spec
        answers 200 when a device "had been removed previously", as
        Synapse does.

        @param body: the request body, for its C{auth} dict.
        @param request: the request, to bind the UIA session to: a session
            started to delete some devices deletes no others.
        @raise MatrixError: 401 with the UIA flows until authenticated; 403
            for a UIA session of another request.
        """
        await self._uia.authenticate(
            body, action="delete_devices", user_id=requester.user_id,
            flows=[[PASSWORD]], server_name=self._server_name, request=request,
        )
        await self.delete_devices_of(requester.user_id, device_ids)

    async def delete_devices_of(self, user_id: str, device_ids: list[str]) -> None:
        """Delete some of any user's devices (unknown ids ignored) and revoke their tokens."""
        if not device_ids:
            return
        revoked = await self._devices.delete_devices(user_id, list(dict.fromkeys(device_ids)))
        self._sessions.revoked(revoked)
        # Heard here, before answering, so the client's next sync has it (the
        # database's NOTIFY covers deletions made by other processes).
        await self._device_changed(user_id)

    def _describe(self, device: Device) -> JsonDict:
        last_seen_ts, last_seen_ip = device.last_seen_ts, device.last_seen_ip
        pending = self._activity.pending(device.user_id, device.device_id)
        if pending is not None:
            last_seen_ts, last_seen_ip = pending
        described: JsonDict = {"device_id": device.device_id}
        if device.display_name is not None:
            described["display_name"] = device.display_name
        if last_seen_ip is not None:
            described["last_seen_ip"] = last_seen_ip
        if last_seen_ts is not None:
            described["last_seen_ts"] = last_seen_ts
        return described


