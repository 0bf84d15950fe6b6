"""
Real traffic against a Synapse, to build the database that
C{ruma-admin import-synapse} tests move into ruma_tx (see synapse_source.py).

Usage: C{python synapse_traffic.py BASE_URL SHARED_SECRET STORE_DIR MANIFEST [--small]}

Clients do what users do: register with passwords (one server admin through
Synapse's shared-secret registration, one guest), log in on nio devices with
encrypted stores under STORE_DIR (kept: after the move the same devices
decrypt their old messages), upload device, one-time and fallback keys,
cross-signing keys and signatures, a key backup; create an encrypted room
and a public one with an alias, and talk in both; upload media; set
profiles, account data, tags, push rules and a pusher; the admin makes a
registration token, and one user is deactivated, one locked, shadow-banned
and made a bot; then a published room's history with threads, edits and
the like (synapse_room_traffic.py). C{--small} does only the accounts, a profile, media and
account data (the SQLite check).

Everything the tests look for afterwards is written to MANIFEST (JSON). Exit
status 0 on success; any failure ends the script with the reason on stderr.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import json
import os
import sys
import time
from urllib.parse import quote

import aiohttp
from nacl.signing import SigningKey
from nio import (
    AsyncClient,
    AsyncClientConfig,
    JoinResponse,
    KeysClaimResponse,
    KeysQueryResponse,
    KeysUploadResponse,
    LoginResponse,
    RegisterResponse,
    RoomCreateResponse,
    RoomPreset,
    RoomSendResponse,
    SyncResponse,
)
from nio.api import Api
from PIL import Image
from unpaddedbase64 import encode_base64
from synapse_room_traffic import room_history

PASSWORD = "correct horse battery staple"
MEGOLM = "m.megolm.v1.aes-sha2"
ENCRYPTED_TEXTS = ["the eagle lands at midnight", "bring the cake", "and candles"]
LOBBY_TEXTS = ["hello lobby", "anyone here?"]
#: Users without devices of their own beyond registration: enough rows that an
#: import with small batches takes many batches (the resume test kills it mid-way).
EXTRA_USERS = 12


class Failed(Exception):
    pass


def check(condition, message: str) -> None:
    if not condition:
        raise Failed(message)


def expect(response, kind):
    check(isinstance(response, kind), f"expected {kind.__name__}, got {response!r}")
    return response


class Synapse:
    """Raw client-server requests (what nio does not model)."""

    def __init__(self, base_url: str, session: aiohttp.ClientSession) -> None:
        self.base_url = base_url
        self.session = session

    async def request(self, method: str, path: str, body=None, token: str | None = None,
                      data: bytes | None = None, content_type: str = "application/json", ok=(200,)):
        if not path.startswith("/"):
            path = "/_matrix/client/v3/" + path
        headers = {"Content-Type": content_type}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        payload = data if data is not None else (None if body is None else json.dumps(body).encode())
        async with self.session.request(method, self.base_url + path, data=payload, headers=headers) as response:
            answer = await response.json(content_type=None)
            if ok and response.status not in ok:
                raise Failed(f"{method} {path}: {response.status} {answer}")
            return response.status, answer

    async def register(self, localpart: str, query: str = "") -> dict:
        _, user = await self.request("POST", "register" + query, {
            "username": localpart, "password": PASSWORD, "auth": {"type": "m.login.dummy"},
            "initial_device_display_name": "registration"})
        return user

    async def register_admin(self, localpart: str, shared_secret: str) -> dict:
        """Synapse's shared-secret registration (its admin API), with the admin flag."""
        _, nonce = await self.request("GET", "/_synapse/admin/v1/register")
        mac = hmac.new(shared_secret.encode(), digestmod=hashlib.sha1)
        mac.update(b"\x00".join([nonce["nonce"].encode(), localpart.encode(), PASSWORD.encode(), b"admin"]))
        _, user = await self.request("POST", "/_synapse/admin/v1/register", {
            "nonce": nonce["nonce"], "username": localpart, "password": PASSWORD, "admin": True,
            "mac": mac.hexdigest()})
        return user

    async def with_password(self, method: str, path: str, body: dict, user: dict):
        """A request behind user-interactive auth, answered with the password."""
        status, first = await self.request(method, path, body, token=user["access_token"], ok=(200, 401))
        if status == 200:
            return first
        auth = {"type": "m.login.password", "session": first.get("session"),
                "identifier": {"type": "m.id.user", "user": user["user_id"]}, "password": PASSWORD}
        _, answer = await self.request(method, path, {**body, "auth": auth}, token=user["access_token"])
        return answer


def png(color) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(out, "PNG")
    return out.getvalue()


def signed(key: SigningKey, user_id: str, key_id: str, obj: dict) -> dict:
    """C{obj} with the signature of C{key} (Matrix canonical JSON, without signatures and unsigned)."""
    unsigned = {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}
    signature = encode_base64(key.sign(Api.to_canonical_json(unsigned).encode()).signature)
    out = dict(obj)
    out.setdefault("signatures", {}).setdefault(user_id, {})[key_id] = signature
    return out


def cross_signing_key(key: SigningKey, user_id: str, usage: str) -> tuple[str, dict]:
    public = encode_base64(bytes(key.verify_key))
    return public, {"user_id": user_id, "usage": [usage], "keys": {f"ed25519:{public}": public}}


class Traffic:
    def __init__(self, base_url: str, shared_secret: str, store_dir: str, small: bool) -> None:
        self.base_url = base_url
        self.shared_secret = shared_secret
        self.store_dir = store_dir
        self.small = small
        self.stamp = f"{os.getpid() % 10000}x{int(time.time()) % 100000}"
        self.manifest: dict = {"password": PASSWORD, "store_dir": store_dir}
        self.nio: dict[str, AsyncClient] = {}

    def name(self, who: str) -> str:
        return f"{who}{self.stamp}"

    async def run(self, synapse: Synapse) -> dict:
        m = self.manifest
        admin = await synapse.register_admin(self.name("admin"), self.shared_secret)
        alice = await synapse.register(self.name("alice"))
        bob = await synapse.register(self.name("bob"))
        m["admin"] = admin["user_id"]
        m["server_name"] = alice["user_id"].split(":", 1)[1]
        m["users"] = {"alice": alice["user_id"], "bob": bob["user_id"]}
        m["old_access_token"] = alice["access_token"]
        m["extra_users"] = [(await synapse.register(self.name(f"extra{i}")))["user_id"]
                            for i in range(EXTRA_USERS)]

        # Deactivated and restricted accounts.
        carol = await synapse.register(self.name("carol"))
        await synapse.with_password("POST", "account/deactivate", {}, carol)
        m["deactivated"] = carol["user_id"]
        mallory = await synapse.register(self.name("mallory"))
        token = admin["access_token"]
        await synapse.request("POST", f"/_synapse/admin/v1/users/{quote(mallory['user_id'])}/shadow_ban",
                              {}, token=token)
        await synapse.request("PUT", f"/_synapse/admin/v2/users/{quote(mallory['user_id'])}",
                              {"locked": True, "user_type": "bot"}, token=token)
        m["locked"] = mallory["user_id"]

        # Profile, media.
        avatar = png((200, 30, 30))
        _, uploaded = await synapse.request("POST", "/_matrix/media/v3/upload?filename=avatar.png",
                                            data=avatar, content_type="image/png", token=alice["access_token"])
        text = b"minutes of the meeting\n" * 50
        _, uploaded_text = await synapse.request("POST", "/_matrix/media/v3/upload?filename=notes.txt",
                                                 data=text, content_type="text/plain",
                                                 token=bob["access_token"])
        m["media"] = [
            {"mxc": uploaded["content_uri"], "sha256": hashlib.sha256(avatar).hexdigest(),
             "content_type": "image/png", "filename": "avatar.png"},
            {"mxc": uploaded_text["content_uri"], "sha256": hashlib.sha256(text).hexdigest(),
             "content_type": "text/plain", "filename": "notes.txt"},
        ]
        profile = f"profile/{quote(alice['user_id'])}"
        await synapse.request("PUT", f"{profile}/displayname", {"displayname": "Alice Liddell"},
                              token=alice["access_token"])
        await synapse.request("PUT", f"{profile}/avatar_url", {"avatar_url": uploaded["content_uri"]},
                              token=alice["access_token"])
        m["profile"] = {"displayname": "Alice Liddell", "avatar_url": uploaded["content_uri"]}

        # Global account data (the ignore list included).
        account_data = f"user/{quote(alice['user_id'])}/account_data"
        settings = {"theme": "dark", "font_size": 14}
        await synapse.request("PUT", f"{account_data}/org.example.settings", settings, token=alice["access_token"])
        ignored = {"ignored_users": {m["extra_users"][0]: {}}}
        await synapse.request("PUT", f"{account_data}/m.ignored_user_list", ignored, token=alice["access_token"])
        m["account_data"] = {"org.example.settings": settings, "m.ignored_user_list": ignored}
        if self.small:
            return m

        # A guest, and a registration token.
        _, guest = await synapse.request("POST", "register?kind=guest", {})
        m["guest"] = guest["user_id"]
        await synapse.request("POST", "/_synapse/admin/v1/registration_tokens/new",
                              {"token": "welcome2025", "uses_allowed": 5}, token=token)
        m["registration_token"] = "welcome2025"

        await self.rooms_and_e2ee(synapse, alice, bob)
        await self.push(synapse, alice)
        m["history"] = await room_history(synapse, alice, bob, self.stamp, m["server_name"])
        return m

    async def nio_login(self, who: str, user_id: str) -> AsyncClient:
        store = os.path.join(self.store_dir, who)
        os.makedirs(store, exist_ok=True)
        client = AsyncClient(self.base_url, user_id, store_path=store,
                             config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False))
        expect(await client.login(PASSWORD, device_name=f"{who}'s laptop"), LoginResponse)
        expect(await client.keys_upload(), KeysUploadResponse)
        self.nio[who] = client
        return client

    async def rooms_and_e2ee(self, synapse: Synapse, alice_user: dict, bob_user: dict) -> None:
        m = self.manifest
        alice = await self.nio_login("alice", alice_user["user_id"])
        bob = await self.nio_login("bob", bob_user["user_id"])
        m["devices"] = {"alice": alice.device_id, "bob": bob.device_id}
        m["device_keys"] = {"alice": alice.olm.account.identity_keys, "bob": bob.olm.account.identity_keys}
        await self.fallback_key(synapse, alice)

        # The encrypted room: alice and bob talk, nio shares the Megolm keys.
        created = expect(await alice.room_create(
            name="secret room", preset=RoomPreset.private_chat, invite=[bob.user_id],
            initial_state=[{"type": "m.room.encryption", "state_key": "", "content": {"algorithm": MEGOLM}}],
        ), RoomCreateResponse)
        room_id = created.room_id
        expect(await bob.sync(timeout=0), SyncResponse)
        expect(await bob.join(room_id), JoinResponse)
        for client in (alice, bob):
            expect(await client.sync(timeout=0, full_state=True), SyncResponse)
        for client in (alice, bob):
            client.olm.users_for_key_query.update({alice.user_id, bob.user_id})
            expect(await client.keys_query(), KeysQueryResponse)
        missing = alice.get_missing_sessions(room_id)
        if missing:
            expect(await alice.keys_claim(missing), KeysClaimResponse)
        sent = []
        for text in ENCRYPTED_TEXTS:
            response = expect(await alice.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": text},
                                                    ignore_unverified_devices=True), RoomSendResponse)
            sent.append(response.event_id)
        expect(await bob.sync(timeout=0), SyncResponse)  # bob's nio receives the room key
        m["encrypted_room"] = {"room_id": room_id, "texts": ENCRYPTED_TEXTS, "event_ids": sent}

        # A public room with an alias and plain messages.
        lobby = expect(await alice.room_create(name="lobby", alias=f"lobby{self.stamp}",
                                               preset=RoomPreset.public_chat), RoomCreateResponse)
        expect(await bob.join(lobby.room_id), JoinResponse)
        expect(await bob.sync(timeout=0), SyncResponse)  # nio sends only into rooms it synced
        for text in LOBBY_TEXTS:
            expect(await bob.room_send(lobby.room_id, "m.room.message", {"msgtype": "m.text", "body": text}),
                   RoomSendResponse)
        m["lobby"] = {"room_id": lobby.room_id, "alias": f"#lobby{self.stamp}:{m['server_name']}",
                      "texts": LOBBY_TEXTS}

        # Per-room account data and tags.
        token = alice_user["access_token"]
        base = f"user/{quote(alice.user_id)}/rooms"
        room_pref = {"notifications": "mentions"}
        await synapse.request("PUT", f"{base}/{quote(room_id)}/account_data/org.example.room_pref", room_pref,
                              token=token)
        await synapse.request("PUT", f"{base}/{quote(room_id)}/tags/m.favourite", {"order": 0.25}, token=token)
        await synapse.request("PUT", f"{base}/{quote(lobby.room_id)}/tags/u.work", {}, token=token)
        await synapse.request("PUT", f"{base}/{quote(lobby.room_id)}/tags/m.lowpriority", {"order": 0.5},
                              token=token)
        m["room_account_data"] = {"room_id": room_id, "type": "org.example.room_pref", "content": room_pref}
        m["tags"] = {room_id: {"m.favourite": {"order": 0.25}},
                     lobby.room_id: {"u.work": {}, "m.lowpriority": {"order": 0.5}}}

        await self.cross_signing(synapse, alice, alice_user)
        await self.key_backup(synapse, alice_user, room_id)

    async def fallback_key(self, synapse: Synapse, client: AsyncClient) -> None:
        """Upload a fallback key signed by the device (nio does not yet)."""
        account = client.olm.account._account
        account.generate_fallback_key()
        key_id, key = next(iter(account.fallback_key.items()))
        body = signed_by_device(client, {"key": key.to_base64(), "fallback": True})
        await synapse.request("POST", "keys/upload", {"fallback_keys": {f"signed_curve25519:{key_id}": body}},
                              token=client.access_token)
        account.mark_keys_as_published()
        client.olm.save_account()
        self.manifest["fallback_key_id"] = f"signed_curve25519:{key_id}"

    async def cross_signing(self, synapse: Synapse, client: AsyncClient, user: dict) -> None:
        """Master, self-signing and user-signing keys; the device signed by the self-signing key."""
        user_id = client.user_id
        master, self_signing, user_signing = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
        master_pub, master_key = cross_signing_key(master, user_id, "master")
        ssk_pub, ssk = cross_signing_key(self_signing, user_id, "self_signing")
        usk_pub, usk = cross_signing_key(user_signing, user_id, "user_signing")
        ssk = signed(master, user_id, f"ed25519:{master_pub}", ssk)
        usk = signed(master, user_id, f"ed25519:{master_pub}", usk)
        await synapse.with_password("POST", "keys/device_signing/upload", {
            "master_key": master_key, "self_signing_key": ssk, "user_signing_key": usk}, user)
        # The self-signing key signs the device; the device signs the master key.
        _, query = await synapse.request("POST", "keys/query", {"device_keys": {user_id: [client.device_id]}},
                                         token=client.access_token)
        device_keys = query["device_keys"][user_id][client.device_id]
        device_signature = signed(self_signing, user_id, f"ed25519:{ssk_pub}", device_keys)
        master_signed = dict(master_key, signatures={user_id: {
            f"ed25519:{client.device_id}": client.olm.sign_json(master_key)}})
        _, answer = await synapse.request("POST", "keys/signatures/upload", {user_id: {
            client.device_id: device_signature, master_pub: master_signed}}, token=client.access_token)
        check(not answer.get("failures"), f"signature upload failures: {answer}")
        self.manifest["cross_signing"] = {"master": master_pub, "self_signing": ssk_pub, "user_signing": usk_pub}

    async def key_backup(self, synapse: Synapse, user: dict, room_id: str) -> None:
        token = user["access_token"]
        auth_data = {"public_key": encode_base64(os.urandom(32))}
        _, version = await synapse.request("POST", "room_keys/version", {
            "algorithm": "m.megolm_backup.v1.curve25519-aes-sha2", "auth_data": auth_data}, token=token)
        session_data = {"ephemeral": encode_base64(os.urandom(32)), "ciphertext": encode_base64(os.urandom(64)),
                        "mac": encode_base64(os.urandom(8))}
        sessions = {}
        for index in range(3):
            session_id = encode_base64(os.urandom(32))
            sessions[session_id] = {"first_message_index": index, "forwarded_count": 0, "is_verified": True,
                                    "session_data": session_data}
        await synapse.request("PUT", f"room_keys/keys?version={version['version']}",
                              {"rooms": {room_id: {"sessions": sessions}}}, token=token)
        self.manifest["key_backup"] = {"version": version["version"], "auth_data": auth_data,
                                       "room_id": room_id, "sessions": sorted(sessions)}

    async def push(self, synapse: Synapse, user: dict) -> None:
        token = user["access_token"]
        cake = {"pattern": "cake", "actions": ["notify", {"set_tweak": "highlight"}]}
        await synapse.request("PUT", "pushrules/global/content/cake", cake, token=token)
        mute = {"conditions": [{"kind": "event_match", "key": "content.msgtype", "pattern": "m.notice"}],
                "actions": []}
        await synapse.request("PUT", "pushrules/global/override/org.example.mute_notices", mute, token=token)
        lobby = self.manifest["lobby"]["room_id"]
        await synapse.request("PUT", f"pushrules/global/room/{quote(lobby)}", {"actions": []}, token=token)
        await synapse.request("PUT", "pushrules/global/override/.m.rule.tombstone/enabled", {"enabled": False},
                              token=token)
        await synapse.request("PUT", "pushrules/global/underride/.m.rule.call/actions",
                              {"actions": ["notify"]}, token=token)
        self.manifest["push_rules"] = {"content/cake": cake, "override/org.example.mute_notices": mute,
                                       f"room/{lobby}": {"actions": []}}
        pusher = {"kind": "http", "app_id": "org.example.app", "pushkey": "pushkey-1",
                  "app_display_name": "Example", "device_display_name": "Alice's phone",
                  "profile_tag": "tag1", "lang": "en",
                  "data": {"url": "https://push.example.org/_matrix/push/v1/notify", "format": "event_id_only"}}
        await synapse.request("POST", "pushers/set", pusher, token=self.nio["alice"].access_token)
        self.manifest["pusher"] = pusher


def signed_by_device(client: AsyncClient, obj: dict) -> dict:
    return dict(obj, signatures={client.user_id: {f"ed25519:{client.device_id}": client.olm.sign_json(obj)}})


async def main(base_url: str, shared_secret: str, store_dir: str, manifest_path: str, small: bool) -> int:
    traffic = Traffic(base_url, shared_secret, store_dir, small)
    try:
        async with aiohttp.ClientSession() as session:
            manifest = await traffic.run(Synapse(base_url, session))
    except Failed as e:
        print(f"synapse_traffic: {e}", file=sys.stderr)
        return 1
    finally:
        for client in traffic.nio.values():
            await client.close()
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=2)
    return 0


if __name__ == "__main__":
    if len(sys.argv) not in (5, 6):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(asyncio.run(main(*sys.argv[1:5], small=sys.argv[5:] == ["--small"])))
