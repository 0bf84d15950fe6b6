"""
Wiring of the admin API (C{/_synapse/admin}): the composition root hands
the components it built to L{admin_apis} in one L{AdminParts}.
"""
from __future__ import annotations

from dataclasses import dataclass

from ruma_tx.http.account_admin import AccountModerationApi
from ruma_tx.http.admin.background_updates import BackgroundUpdatesApi
from ruma_tx.http.admin.federation import FederationAdminApi
from ruma_tx.http.admin.media import MediaAdminApi
from ruma_tx.http.admin.notices import ServerNoticesApi
from ruma_tx.http.admin.registration_tokens import RegistrationTokensAdminApi
from ruma_tx.http.admin.reports import EventReportsAdminApi
from ruma_tx.http.admin.room_delete import RoomDeleteApi
from ruma_tx.http.admin.rooms import RoomAdminApi
from ruma_tx.http.admin.server import ServerAdminApi
from ruma_tx.http.admin.users import UserAdminApi
from ruma_tx.http.admin.users_devices import UserDevicesAdminApi
from ruma_tx.runtime.account_controls import AccountControls
from ruma_tx.runtime.federation import software_version
from ruma_tx.runtime.reactor import IRuntimeReactor
from ruma_tx.services.account_data import AccountDataKeeper
from ruma_tx.services.admin_federation import FederationAdmin
from ruma_tx.services.admin_media import AdminMedia
from ruma_tx.services.admin_reports import EventReportsAdmin
from ruma_tx.services.admin_rooms import AdminRooms
from ruma_tx.services.admin_users import UserAdmin
from ruma_tx.services.background_updates import BackgroundUpdates
from ruma_tx.services.devices import DeviceManager
from ruma_tx.services.erasure import ErasedUsers
from ruma_tx.services.events import EventCreator
from ruma_tx.services.federation_sender import FederationSender
from ruma_tx.services.history import HistoryReader
from ruma_tx.services.login import Authenticator
from ruma_tx.services.media import MediaRepository
from ruma_tx.services.membership import MembershipChanger
from ruma_tx.services.passwords import PasswordHasher
from ruma_tx.services.ports.accounts import Accounts
from ruma_tx.services.ports.events import Events
from ruma_tx.services.profile import ProfileEditor
from ruma_tx.services.ratelimit_overrides import RateLimitOverrides
from ruma_tx.services.reading import RoomReader
from ruma_tx.services.room_purge import RoomDeleter
from ruma_tx.services.rooms import RoomCreator
from ruma_tx.services.search import SearchBackfill
from ruma_tx.services.server_notices import NoticeSettings, ServerNotices
from ruma_tx.services.shadow_bans import ShadowBans
from ruma_tx.storage.admin_federation import AdminFederationStore
from ruma_tx.storage.admin_media import AdminMediaStore
from ruma_tx.storage.admin_reports import AdminReportStore
from ruma_tx.storage.admin_rooms import AdminRoomStore, DeleteJobStore, RoomBlockStore
from ruma_tx.storage.admin_users import AdminUserStore
from ruma_tx.storage.database import Database
from ruma_tx.storage.directory import DirectoryStore
from ruma_tx.storage.erasure import ErasureStore
from ruma_tx.storage.pushers import PusherStore
from ruma_tx.storage.room_purge import RoomPurgeStore


@dataclass(frozen=True)
class UserModeration:
    """
    The admin API's shadow-bans, rate limit overrides and erasures, which
    the event creator, the router and the history reader consult: built
    before them, by L{user_moderation}.
    """

    store: AdminUserStore
    shadow_bans: ShadowBans
    rate_overrides: RateLimitOverrides
    erased: ErasedUsers


def user_moderation(database: Database) -> UserModeration:
    store = AdminUserStore(database)
    return UserModeration(store=store, shadow_bans=ShadowBans(store), rate_overrides=RateLimitOverrides(store),
                          erased=ErasedUsers(ErasureStore(database)))


def room_blocks(database: Database) -> RoomBlockStore:
    """The rooms server admins blocked, which membership changes consult."""
    return RoomBlockStore(database)


@dataclass(frozen=True)
class AdminParts:
    """The components the admin endpoints work through."""

    accounts: Accounts
    database: Database
    reactor: IRuntimeReactor
    server_name: str
    media: MediaRepository
    events: Events
    rooms: RoomCreator
    membership: MembershipChanger
    creator: EventCreator
    account_data: AccountDataKeeper
    search_backfill: SearchBackfill
    #: The federation sending queue; None with federation off.
    sender: FederationSender | None
    #: None: server notices are off.
    notices: NoticeSettings | None
    #: Registration tokens, and the locks and suspensions of accounts.
    controls: AccountControls
    authenticator: Authenticator
    hasher: PasswordHasher
    profiles: ProfileEditor
    devices: DeviceManager
    history: HistoryReader
    moderation: UserModeration


def admin_apis(parts: AdminParts) -> list[object]:
    """The admin API objects for the client router."""
    return [
        ServerAdminApi(software_version()),
        MediaAdminApi(AdminMedia(repository=parts.media, store=AdminMediaStore(parts.database),
                                 accounts=parts.accounts, clock=parts.reactor, server_name=parts.server_name)),
        EventReportsAdminApi(EventReportsAdmin(AdminReportStore(parts.database))),
        ServerNoticesApi(ServerNotices(
            settings=parts.notices, accounts=parts.accounts, events=parts.events, rooms=parts.rooms,
            membership=parts.membership, creator=parts.creator, account_data=parts.account_data,
            clock=parts.reactor, server_name=parts.server_name)),
        FederationAdminApi(FederationAdmin(destinations=AdminFederationStore(parts.database, parts.server_name),
                                           sender=parts.sender)),
        BackgroundUpdatesApi(BackgroundUpdates([parts.search_backfill])),
        RegistrationTokensAdminApi(parts.controls.registration_tokens),
        # The spec's own admin endpoints (under /_matrix/client/v1/admin).
        AccountModerationApi(parts.controls.restrictions),
        *_user_apis(parts),
        *_room_apis(parts),
    ]


def _user_apis(parts: AdminParts) -> list[object]:
    users = UserAdmin(
        accounts=parts.accounts, users=parts.moderation.store, authenticator=parts.authenticator,
        hasher=parts.hasher, profiles=parts.profiles, devices=parts.devices,
        joined_rooms=RoomReader(events=parts.events, history=parts.history).joined_rooms,
        pushers=PusherStore(parts.database),
        shadow_bans=parts.moderation.shadow_bans, rate_overrides=parts.moderation.rate_overrides,
        set_locked=parts.controls.restrictions.set_locked, erased=parts.moderation.erased, clock=parts.reactor,
        server_name=parts.server_name)
    return [UserAdminApi(users), UserDevicesAdminApi(users)]


def _room_apis(parts: AdminParts) -> list[object]:
    blocks = room_blocks(parts.database)
    rooms = AdminRooms(store=AdminRoomStore(parts.database, parts.server_name), blocks=blocks, events=parts.events,
                       history=parts.history, membership=parts.membership, creator=parts.creator,
                       accounts=parts.accounts, clock=parts.reactor, server_name=parts.server_name)
    deleter = RoomDeleter(jobs=DeleteJobStore(parts.database), purge=RoomPurgeStore(parts.database, parts.server_name),
                          blocks=blocks, directory=DirectoryStore(parts.database), membership=parts.membership,
                          rooms=parts.rooms, creator=parts.creator, clock=parts.reactor, server_name=parts.server_name)
    return [RoomAdminApi(rooms), RoomDeleteApi(deleter)]
