"""
Device lists over federation: the rules (L{ruma_tx.matrix.device_lists}, the checks of
L{ruma_tx.matrix.federated_keys}), our users' updates as sent
(L{ruma_tx.services.device_list_updates}) and other servers' users' lists as kept
(L{ruma_tx.services.remote_device_lists}), over in-memory fakes. Keys are really signed.
"""
from __future__ import annotations

import pytest_twisted
from signedjson.key import generate_signing_key

from ruma_tx.matrix.device_lists import (
    DeviceChange,
    RemoteDevice,
    RemoteDeviceList,
    UpdateAction,
    device_changes,
    digest,
    prev_ids,
    signing_keys_digest,
    update_action,
)
from ruma_tx.matrix.federated_keys import checked_signing_keys, checked_user_devices
from ruma_tx.matrix.federation_transactions import DeviceListUpdate, SigningKeyUpdate, parse_edus
from ruma_tx.matrix.to_device import has_remote_recipients, remote_message_id
from ruma_tx.services.device_list_updates import DeviceListUpdates, PublishedKeys
from ruma_tx.services.ports.device_lists import AnnouncedDeviceList
from ruma_tx.services.remote_device_lists import RemoteDeviceLists
from ruma_tx.services.remote_queries import QueriedKeys
from test_federated_keys import cross_signing_key, device_keys

ALICE = "@alice:a.example"
BOB = "@bob:b.example"


# -- rules --------------------------------------------------------------------

def test_an_update_applies_when_it_follows_what_is_held():
    """An update naming the held stream id (or earlier ones) applies; a repeat or older one is ignored."""
    assert update_action(5, 6, (5,)) is UpdateAction.APPLY
    assert update_action(5, 9, (3, 5)) is UpdateAction.APPLY
    assert update_action(5, 5, (4,)) is UpdateAction.IGNORE
    assert update_action(5, 2, ()) is UpdateAction.IGNORE


def test_a_gap_or_nothing_held_means_fetching_the_list_again():
    """A predecessor never received, an empty prev_id (a new sequence) or no list held: fetch it again."""
    assert update_action(5, 7, (6,)) is UpdateAction.RESYNC
    assert update_action(5, 7, (5, 6)) is UpdateAction.RESYNC
    assert update_action(5, 7, ()) is UpdateAction.RESYNC
    assert update_action(None, 1, ()) is UpdateAction.RESYNC


def test_device_changes_name_new_changed_and_gone_devices_once():
    """Devices whose keys differ from what was announced, then the gone ones; unchanged ones are not sent."""
    same, new, changed = {"k": 1}, {"k": 2}, {"k": 3}
    announced = {"SAME": digest(same), "CHANGED": digest({"k": 0}), "GONE": digest({"k": 4})}
    assert device_changes({"SAME": same, "NEW": new, "CHANGED": changed}, announced) == [
        DeviceChange("CHANGED", changed), DeviceChange("NEW", new), DeviceChange("GONE", None)]
    assert device_changes({"SAME": same}, {"SAME": digest(same)}) == []


def test_an_update_with_a_stream_id_beyond_canonical_json_is_dropped():
    """A stream_id or prev_id outside 0..2**53-1 (which no database column could hold) is not an update."""
    def edu(stream_id, prev_id):
        return {"edu_type": "m.device_list_update",
                "content": {"user_id": BOB, "device_id": "D", "stream_id": stream_id, "prev_id": prev_id}}

    parsed = list(parse_edus([edu(2**63, []), edu(3, [2**63]), edu(-1, []), edu(2**53 - 1, [2])], "b.example"))
    assert [(u.stream_id, u.prev_id) for u in parsed] == [(2**53 - 1, (2,))]


def test_our_sequence_chains_each_update_to_the_one_before():
    """The first update of a user names none; each later one names the one before."""
    assert prev_ids(1) == []
    assert prev_ids(7) == [6]
    assert signing_keys_digest(None, {"k": 1}) is None
    assert signing_keys_digest({"m": 1}, None) != signing_keys_digest({"m": 1}, {"s": 1})


def test_a_held_list_answers_key_queries_with_the_display_name_in_unsigned():
    """Only devices with keys are listed, only those asked when some are, each with its unsigned."""
    held = RemoteDeviceList(3, {"A": RemoteDevice({"k": "a"}, "phone"), "B": RemoteDevice({"k": "b"}),
                                "NOKEYS": RemoteDevice(None)})
    assert held.device_keys([]) == {"A": {"k": "a", "unsigned": {"device_display_name": "phone"}},
                                    "B": {"k": "b", "unsigned": {}}}
    assert list(held.device_keys(["B", "NOKEYS"])) == ["B"]


def test_a_user_devices_answer_keeps_only_what_is_well_signed():
    """/user/devices: a device whose keys are not its own keeps none; another user's answer is refused;
    a self-signing key not signed by the master is dropped."""
    master_key = generate_signing_key("m")
    master = cross_signing_key(BOB, "master", master_key)
    good = device_keys(BOB, "GOOD")
    answer = {"user_id": BOB, "stream_id": 4,
              "devices": [{"device_id": "GOOD", "keys": good, "device_display_name": "laptop"},
                          {"device_id": "FORGED", "keys": device_keys(BOB, "OTHER")}, "junk"],
              "master_key": master,
              "self_signing_key": cross_signing_key(BOB, "self_signing", generate_signing_key("s"))}
    found = checked_user_devices(answer, BOB)
    assert found is not None
    assert (found.stream_id, found.master_key, found.self_signing_key) == (4, master, None)
    assert found.devices == {"GOOD": RemoteDevice(good, "laptop"), "FORGED": RemoteDevice(None)}
    assert checked_user_devices({**answer, "user_id": ALICE}, BOB) is None
    assert checked_user_devices({**answer, "stream_id": "4"}, BOB) is None


def test_a_self_signing_key_alone_is_checked_against_the_known_master():
    """An m.signing_key_update with only a self-signing key keeps it when the held master signed it."""
    master_key = generate_signing_key("m")
    master = cross_signing_key(BOB, "master", master_key)
    self_signing = cross_signing_key(BOB, "self_signing", generate_signing_key("s"), signed_by=master_key)
    assert checked_signing_keys(BOB, None, self_signing, known_master=master) == (None, self_signing)
    assert checked_signing_keys(BOB, None, self_signing, known_master=None) == (None, None)


def test_to_device_messages_for_other_servers_get_a_stable_message_id():
    """A retried request (same sender, device, type and transaction id) has the same message_id."""
    assert remote_message_id(ALICE, "D", "m.room.encrypted", "t1") == remote_message_id(
        ALICE, "D", "m.room.encrypted", "t1")
    assert remote_message_id(ALICE, "D", "m.room.encrypted", "t1") != remote_message_id(
        ALICE, "D", "m.room.encrypted", "t2")
    assert has_remote_recipients({ALICE: {}, BOB: {}}, "a.example")
    assert not has_remote_recipients({ALICE: {}}, "a.example")


# -- our updates ----------------------------------------------------------------

class Store:
    """Both ports of L{ruma_tx.storage.device_lists.DeviceListStore}, in memory."""

    def __init__(self, sharing=()):
        self.announced: dict[str, AnnouncedDeviceList] = {}
        self.remote: dict[str, RemoteDeviceList] = {}
        self.sharing = set(sharing)

    async def get_announced(self, user_id):
        return self.announced.get(user_id, AnnouncedDeviceList())

    async def announce(self, user_id, changes, signing_keys_digest):
        before = self.announced.get(user_id, AnnouncedDeviceList())
        devices = dict(before.devices)
        for change in changes:
            if change.keys is None:
                devices.pop(change.device_id, None)
            else:
                devices[change.device_id] = change.keys_digest
        self.announced[user_id] = AnnouncedDeviceList(before.stream_id + len(changes), signing_keys_digest, devices)
        return before.stream_id + len(changes)

    async def get_stream_id(self, user_id):
        return self.announced.get(user_id, AnnouncedDeviceList()).stream_id

    async def get_remote_stream_id(self, user_id):
        held = self.remote.get(user_id)
        return None if held is None else held.stream_id

    async def get_remote_device_lists(self, user_ids):
        return {u: self.remote[u] for u in user_ids if u in self.remote}

    async def put_remote_device_list(self, user_id, device_list):
        self.remote[user_id] = device_list

    async def apply_remote_update(self, user_id, stream_id, device_id, device):
        held = self.remote[user_id]
        devices = {k: v for k, v in held.devices.items() if k != device_id}
        if device is not None:
            devices[device_id] = device
        self.remote[user_id] = RemoteDeviceList(stream_id, devices, held.master_key, held.self_signing_key)

    async def put_remote_signing_keys(self, user_id, master_key, self_signing_key):
        held = self.remote[user_id]
        self.remote[user_id] = RemoteDeviceList(held.stream_id, held.devices, master_key, self_signing_key)

    async def forget_remote_device_list(self, user_id):
        self.remote.pop(user_id, None)

    async def get_users_sharing_rooms_with_ours(self, user_ids):
        return set(user_ids) & self.sharing


class Edus:
    def __init__(self):
        self.updates: list[dict] = []
        self.signing: list[tuple] = []

    async def device_list_changed(self, user_id, updates):
        self.updates.extend(updates)

    async def signing_keys_changed(self, user_id, *, master_key=None, self_signing_key=None):
        self.signing.append((user_id, master_key, self_signing_key))


def publisher(keys: dict):
    store, edus = Store(), Edus()

    async def published(user_id):
        return keys[user_id]

    return DeviceListUpdates(store=store, keys=published, edus=edus, server_name="a.example"), store, edus


@pytest_twisted.ensureDeferred
async def test_each_changed_device_is_sent_once_in_a_chain():
    """Two devices make updates 1 and 2 (2 naming 1); publishing again sends nothing; a deletion is update 3."""
    first, second = device_keys(ALICE, "D1"), device_keys(ALICE, "D2")
    keys = {ALICE: PublishedKeys({"D1": first, "D2": second})}
    updates, store, edus = publisher(keys)
    await updates.publish(ALICE)
    await updates.publish(ALICE)
    assert [(u["device_id"], u["stream_id"], u["prev_id"], u.get("keys")) for u in edus.updates] == [
        ("D1", 1, [], first), ("D2", 2, [1], second)]

    keys[ALICE] = PublishedKeys({"D1": first})
    await updates.publish(ALICE)
    assert edus.updates[-1] == {"user_id": ALICE, "device_id": "D2", "stream_id": 3, "prev_id": [2],
                                "deleted": True}
    assert await store.get_stream_id(ALICE) == 3
    assert edus.signing == []


@pytest_twisted.ensureDeferred
async def test_new_cross_signing_keys_are_sent_once_as_a_signing_key_update():
    """A new master and self-signing key make one m.signing_key_update; the same keys again, none."""
    master, self_signing = {"usage": ["master"]}, {"usage": ["self_signing"]}
    updates, _, edus = publisher({ALICE: PublishedKeys({}, master, self_signing)})
    await updates.publish(ALICE)
    await updates.publish(ALICE)
    assert edus.signing == [(ALICE, master, self_signing)]
    assert edus.updates == []


@pytest_twisted.ensureDeferred
async def test_another_servers_users_changes_are_not_ours_to_send():
    """A change of a remote user (recorded for our /sync) sends nothing."""
    updates, _, edus = publisher({})
    updates.changed(BOB)
    assert edus.updates == []


# -- their lists ------------------------------------------------------------------

class Remote:
    """The other servers' answers: /user/devices per user, /user/keys/query per server."""

    def __init__(self, lists):
        self.lists = lists
        self.fetched: list[str] = []
        self.queried: list[dict] = []

    async def user_devices(self, user_id, timeout_ms, failures):
        self.fetched.append(user_id)
        found = self.lists.get(user_id)
        if found is None:
            failures[user_id.split(":", 1)[1]] = {"status": 503, "message": "down"}
        return found

    async def query(self, wanted, timeout_ms):
        self.queried.append(wanted)
        return QueriedKeys(device_keys={u: {} for users in wanted.values() for u in users})


def remote_lists(store, remote):
    changed: list[str] = []

    async def record(user_id):
        changed.append(user_id)

    return RemoteDeviceLists(store=store, keys=remote, changed=record), changed


@pytest_twisted.ensureDeferred
async def test_updates_that_follow_are_applied_and_a_gap_fetches_the_list_again():
    """Update 5 after 4 is applied; update 7 after 6 (never received) fetches the list again; each is told."""
    old, new = device_keys(BOB, "OLD"), device_keys(BOB, "NEW")
    store = Store(sharing=[BOB])
    store.remote[BOB] = RemoteDeviceList(4, {"OLD": RemoteDevice(old)})
    remote = Remote({BOB: RemoteDeviceList(9, {"NEW": RemoteDevice(new)})})
    lists, changed = remote_lists(store, remote)

    await lists.update(DeviceListUpdate(BOB, "NEW", 5, (4,), False, new, "tablet"))
    assert store.remote[BOB].devices == {"OLD": RemoteDevice(old), "NEW": RemoteDevice(new, "tablet")}
    await lists.update(DeviceListUpdate(BOB, "OLD", 5, (4,), True, None))  # a repeat: nothing new
    assert remote.fetched == [] and changed == [BOB]

    await lists.update(DeviceListUpdate(BOB, "OLD", 7, (6,), True, None))
    assert remote.fetched == [BOB]
    assert store.remote[BOB] == RemoteDeviceList(9, {"NEW": RemoteDevice(new)})
    assert changed == [BOB, BOB]


@pytest_twisted.ensureDeferred
async def test_forged_keys_in_an_update_are_not_kept():
    """A device whose update carries keys not signed by it is kept without keys."""
    store = Store(sharing=[BOB])
    store.remote[BOB] = RemoteDeviceList(1, {})
    lists, _ = remote_lists(store, Remote({}))
    await lists.update(DeviceListUpdate(BOB, "D", 2, (1,), False, device_keys(BOB, "OTHER")))
    assert store.remote[BOB].devices == {"D": RemoteDevice(None)}


@pytest_twisted.ensureDeferred
async def test_updates_about_users_sharing_no_room_are_ignored():
    """As Synapse: nothing is fetched, kept or told for a user who shares no room with ours."""
    store = Store()
    remote = Remote({BOB: RemoteDeviceList(1, {})})
    lists, changed = remote_lists(store, remote)
    await lists.update(DeviceListUpdate(BOB, "D", 1, (), False, None))
    await lists.signing_keys(SigningKeyUpdate(BOB, None, None))
    assert (store.remote, remote.fetched, changed) == ({}, [], [])


@pytest_twisted.ensureDeferred
async def test_queries_answer_from_held_lists_and_fetch_room_mates_once():
    """A held list answers without asking; a room-mate's list is fetched (once) then held; a stranger's
    server is asked with /user/keys/query; a room-mate whose server is down is in failures."""
    held_keys, fetched_keys = device_keys(BOB, "HELD"), device_keys("@carl:c.example", "C1")
    store = Store(sharing=[BOB, "@carl:c.example", "@dan:d.example"])
    store.remote[BOB] = RemoteDeviceList(2, {"HELD": RemoteDevice(held_keys)}, {"usage": ["master"]})
    remote = Remote({"@carl:c.example": RemoteDeviceList(1, {"C1": RemoteDevice(fetched_keys)})})
    lists, _ = remote_lists(store, remote)
    wanted = {"b.example": {BOB: []}, "c.example": {"@carl:c.example": []},
              "d.example": {"@dan:d.example": []}, "e.example": {"@eve:e.example": []}}

    answer = await lists.query(wanted, 1000)
    assert answer.device_keys[BOB] == {"HELD": {**held_keys, "unsigned": {}}}
    assert answer.master_keys == {BOB: {"usage": ["master"]}}
    assert answer.device_keys["@carl:c.example"] == {"C1": {**fetched_keys, "unsigned": {}}}
    assert answer.failures == {"d.example": {"status": 503, "message": "down"}}
    assert remote.queried == [{"e.example": {"@eve:e.example": []}}]

    await lists.query({"c.example": {"@carl:c.example": ["C1"]}}, 1000)
    assert sorted(remote.fetched) == ["@carl:c.example", "@dan:d.example"]


@pytest_twisted.ensureDeferred
async def test_a_signing_key_update_replaces_the_held_keys():
    """A new master key replaces the held one, and a self-signing key it did not sign is dropped."""
    old_master_key, new_master_key = generate_signing_key("m1"), generate_signing_key("m2")
    old_master = cross_signing_key(BOB, "master", old_master_key)
    old_self_signing = cross_signing_key(BOB, "self_signing", generate_signing_key("s"), signed_by=old_master_key)
    new_master = cross_signing_key(BOB, "master", new_master_key)
    store = Store(sharing=[BOB])
    store.remote[BOB] = RemoteDeviceList(1, {}, old_master, old_self_signing)
    lists, changed = remote_lists(store, Remote({}))
    await lists.signing_keys(SigningKeyUpdate(BOB, new_master, None))
    assert (store.remote[BOB].master_key, store.remote[BOB].self_signing_key) == (new_master, None)
    assert changed == [BOB]
