"""
The composition root: C{makeService} reads the config and builds the
homeserver service, which starts the database, applies migrations, wires
every component and listens.
"""
from __future__ import annotations

import gc
import os
from typing import TYPE_CHECKING, Any, Coroutine, cast

from prometheus_client import CollectorRegistry
from signedjson.types import SigningKey
from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort, ITCPTransport
from twisted.internet.task import deferLater
from twisted.logger import LogLevel
from twisted.python import usage
from twisted.python.failure import Failure

from ruma_tx.http.account import AccountApi
from ruma_tx.http.account_data import AccountDataApi
from ruma_tx.http.cross_signing import CrossSigningApi
from ruma_tx.http.devices import DeviceApi
from ruma_tx.http.directory import DirectoryApi
from ruma_tx.http.ephemeral import EphemeralApi
from ruma_tx.http.federation_queries import FederationQueryApi
from ruma_tx.http.filters import FilterApi
from ruma_tx.http.history import HistoryApi
from ruma_tx.http.keys import KeysApi
from ruma_tx.http.legacy import LegacyApi
from ruma_tx.http.login import LoginApi
from ruma_tx.http.meta import MetaApi
from ruma_tx.http.notifications import NotificationsApi
from ruma_tx.http.openid import OpenIdApi, OpenIdUserInfoApi
from ruma_tx.http.presence import PresenceApi
from ruma_tx.http.profile import ProfileApi
from ruma_tx.http.push import PushRulesApi
from ruma_tx.http.pushers import PushersApi
from ruma_tx.http.register import RegisterApi
from ruma_tx.http.relations import RelationsApi
from ruma_tx.http.reports import ReportApi
from ruma_tx.http.room_keys import RoomKeysApi
from ruma_tx.http.room_upgrade import RoomUpgradeApi
from ruma_tx.http.rooms import RoomApi
from ruma_tx.http.routing import Router
from ruma_tx.http.search import SearchApi
from ruma_tx.http.site import MatrixRoot, MatrixSite
from ruma_tx.http.spaces import SpacesApi
from ruma_tx.http.sync import SyncApi
from ruma_tx.http.to_device import ToDeviceApi
from ruma_tx.http.voip import VoipApi
from ruma_tx.http.well_known import SupportApi
from ruma_tx.logs import logger, set_level
from ruma_tx.matrix.room_versions import DEFAULT_ROOM_VERSION, ROOM_VERSIONS
from ruma_tx.matrix.support import support_body
from ruma_tx.runtime.account_controls import build_account_controls
from ruma_tx.runtime.admin_api import AdminParts, admin_apis, room_blocks, user_moderation
from ruma_tx.runtime.client_api import ClientApi
from ruma_tx.runtime.config import RATE_LIMITED_ACTIONS, Config, ConfigError, load_config
from ruma_tx.runtime.federation import build_federation, software_version
from ruma_tx.runtime.federation_device_lists import build_remote_device_lists, device_list_publishers
from ruma_tx.runtime.federation_media import federation_media_apis
from ruma_tx.runtime.federation_queries import federation_lookup_apis, remote_lookups
from ruma_tx.runtime.federation_rooms import (
    build_room_federation,
    build_sending,
    federation_reads_api,
    federation_rooms_api,
)
from ruma_tx.runtime.media import Media, build_media
from ruma_tx.runtime.observability import build_observability
from ruma_tx.runtime.outbound import OutboundHttpClient
from ruma_tx.runtime.reactor import IRuntimeReactor
from ruma_tx.runtime.sliding_sync import RoomCaches, build_sliding_sync
from ruma_tx.runtime.secrets import load_or_create_signing_key, read_or_create_secret
from ruma_tx.services.account_data import AccountDataKeeper
from ruma_tx.services.admin_access import AdminAccess
from ruma_tx.services.aggregations import Aggregator
from ruma_tx.services.canonical_alias import CanonicalAliasCheck
from ruma_tx.services.clock import now_ms, Periodic
from ruma_tx.services.cross_signing import CrossSigning, DeviceLists, KeyQueries
from ruma_tx.services.devices import DeviceActivity, DeviceManager
from ruma_tx.services.directory import Directory
from ruma_tx.services.ephemeral import ReceiptKeeper, TypingTracker
from ruma_tx.services.events import EventCreator
from ruma_tx.services.federation_sender import FederationSender
from ruma_tx.services.filters import FilterKeeper
from ruma_tx.services.guard import Guard
from ruma_tx.services.guest_access import GuestEviction
from ruma_tx.services.history import HistoryReader
from ruma_tx.services.initial_sync import InitialSync
from ruma_tx.services.keys import DeviceKeys
from ruma_tx.services.legacy_events import EventStream
from ruma_tx.services.login import Authenticator
from ruma_tx.services.membership import MembershipChanger
from ruma_tx.services.metrics import Metrics
from ruma_tx.services.notifications import NotificationList
from ruma_tx.services.notifier import Notifier
from ruma_tx.services.openid import OpenIdTokens
from ruma_tx.services.passwords import PasswordChecker, PasswordHasher
from ruma_tx.services.presence import PresenceTracker
from ruma_tx.services.profile import ProfileEditor
from ruma_tx.services.push import PushEvaluator, PushRules, UnreadCounts
from ruma_tx.services.push_delivery import PushDelivery
from ruma_tx.services.pushers import Pushers
from ruma_tx.services.ratelimit import RateLimit, RateLimiter
from ruma_tx.services.reading import RoomReader
from ruma_tx.services.registration import Registrar
from ruma_tx.services.relations import RelationChecker, RelationsReader
from ruma_tx.services.reports import ContentReports
from ruma_tx.services.room_dag import RoomDag
from ruma_tx.services.room_keys import KeyBackup
from ruma_tx.services.room_upgrade import RoomUpgrader
from ruma_tx.services.rooms import RoomCreator
from ruma_tx.services.search import RoomSearch, SearchBackfill
from ruma_tx.services.sessions import SessionIssuer
from ruma_tx.services.spaces import MutualRooms, RoomSummaries
from ruma_tx.services.streams import StreamIdGenerator, StreamWriter
from ruma_tx.services.sliding_extensions import ExtensionSources
from ruma_tx.services.sync import SyncResponder, UserMemberships
from ruma_tx.services.sync_rooms import RoomSections
from ruma_tx.services.to_device import ToDeviceMessages
from ruma_tx.services.uia import UserInteractiveAuth
from ruma_tx.services.user_directory import UserDirectory
from ruma_tx.services.voip import TurnServer
from ruma_tx.storage.accounts import AccountStore
from ruma_tx.storage.cross_signing import CrossSigningStore
from ruma_tx.storage.database import Database
from ruma_tx.storage.device_lists import DeviceListStore
from ruma_tx.storage.devices import DeviceStore
from ruma_tx.storage.directory import DirectoryStore
from ruma_tx.storage.ephemeral import AccountDataStore, PresenceStore, ReceiptStore
from ruma_tx.storage.events import EventStore
from ruma_tx.storage.filters import FilterStore
from ruma_tx.storage.history import HistoryStore
from ruma_tx.storage.keys import KeyStore
from ruma_tx.storage.legacy_events import LegacyEventStore
from ruma_tx.storage.migrations import migrate
from ruma_tx.storage.relations import RelationStore
from ruma_tx.storage.notifications import NotificationListener
from ruma_tx.storage.openid import OpenIdStore
from ruma_tx.storage.positions import max_stream_position
from ruma_tx.storage.push import PushStore
from ruma_tx.storage.pushers import PusherStore
from ruma_tx.storage.reports import ReportStore
from ruma_tx.storage.room_dag import DagStore
from ruma_tx.storage.room_keys import RoomKeyStore
from ruma_tx.storage.room_summaries import RoomSummaryStore
from ruma_tx.storage.room_upgrade import RoomUpgradeStore
from ruma_tx.storage.search import SearchStore
from ruma_tx.storage.sync_reads import SyncReadStore
from ruma_tx.storage.to_device import ToDeviceStore
from ruma_tx.storage.tokens import TokenStore
from ruma_tx.storage.uia import UiaStore
from ruma_tx.storage.user_directory import UserDirectoryStore

if TYPE_CHECKING:
    from ruma_tx.runtime.embedded import EmbeddedPostgres

log = logger(__name__)



class Options(usage.Options):
    optParameters = [["config", "c", "etc/ruma.toml", "The TOML configuration file."]]

    def postOptions(self) -> None:
        try:
            self.config = load_config(self["config"])
        except ConfigError as e:
            raise usage.UsageError(str(e)) from None


def makeService(options: Options) -> Service:
    from twisted.internet import reactor

    # The default reactor provides every interface the runtime uses.
    return HomeserverService(options.config, cast(IRuntimeReactor, reactor))


class HomeserverService(Service):
    """
    Starts the database (the embedded cluster when no DSN is configured),
    builds the server and listens; on stop, stops accepting, lets requests
    in flight finish (up to the grace period), then closes the pool and
    stops the cluster.
    """

    def __init__(self, config: Config, reactor: IRuntimeReactor) -> None:
        self._config = config
        self._reactor = reactor
        self._cluster: EmbeddedPostgres | None = None
        self._database: Database | None = None
        self._metrics: Metrics | None = None
        self._ports: list[IListeningPort] = []
        self._sites: list[MatrixSite] = []
        self._activity: DeviceActivity | None = None
        self._listener: NotificationListener | None = None
        self._notifier: Notifier | None = None
        self._push_delivery: PushDelivery | None = None
        self._federation_sender: FederationSender | None = None
        self._media: Media | None = None
        self._guest_eviction: GuestEviction | None = None
        self._sliding_sync_saver: Periodic | None = None
        self._started: defer.Deferred[None] | None = None

    def startService(self) -> None:
        super().startService()
        set_level(self._config.logging.level)
        # A response of thousands of events makes hundreds of thousands of
        # short-lived objects: the default thresholds ran the cyclic
        # collector over them many times per big /sync. Collect young
        # objects less often (memory use stays bounded: they die young).
        gc.set_threshold(50_000, 20, 100)
        self._started = defer.ensureDeferred(self._start())
        self._started.addErrback(self._start_failed)

    def _start_failed(self, failure: Failure) -> None:
        if not self.running:
            return  # stopped while starting: stopService cleans up
        log.failure("ruma_tx could not start", failure, LogLevel.critical)
        d = defer.ensureDeferred(self._stop())
        d.addBoth(lambda _: self._reactor.stop())
        # twistd would exit 0 after reactor.stop(): make the failure visible.
        self._reactor.addSystemEventTrigger("after", "shutdown", os._exit, 1)

    def stopService(self) -> defer.Deferred[None]:
        super().stopService()
        if self._started is not None and not self._started.called:
            self._started.cancel()
        return defer.ensureDeferred(self._stop())

    async def _start(self) -> None:
        config, reactor = self._config, self._reactor
        dsn = config.database.dsn
        if dsn is None:
            from ruma_tx.runtime.embedded import EmbeddedPostgres

            self._cluster = EmbeddedPostgres(config.data_dir, reactor)
            dsn = await self._cluster.start()
        self._metrics = metrics = Metrics(CollectorRegistry(), reactor, config.server_name)
        self._database = Database(dsn, config.database.pool_size, reactor, on_query=metrics.query_finished)
        await self._database.open()
        await migrate(self._database, now_ms(self._reactor))
        macaroon_key = read_or_create_secret(config.macaroon_key_path)
        signing_key = load_or_create_signing_key(config.signing_key_path)
        stream_start = await max_stream_position(self._database)
        api = build_client_api(config, self._database, reactor, macaroon_key, signing_key, stream_start, metrics)
        self._activity = api.activity
        self._notifier = api.notifier
        self._push_delivery = api.push_delivery
        self._federation_sender = api.federation_sender
        self._media = api.media
        self._guest_eviction = api.guest_eviction
        self._sliding_sync_saver = api.sliding_sync_saver
        await api.push_delivery.start()
        if api.federation_sender is not None:
            await api.federation_sender.start()
        self._listener = NotificationListener(dsn, reactor)
        await self._listener.start()
        await self._listener.listen(
            "ruma_tokens_revoked",
            lambda token_id: api.guard.forget_tokens([token_id]),
            on_reconnect=api.guard.forget_all,
        )
        await self._listener.listen(
            "ruma_devices_deleted",
            lambda user_id: log_failure(api.device_lists.changed(user_id)),
        )
        level = None if config.logging.requests == "off" else LogLevel.levelWithName(config.logging.requests)
        for listener in config.listeners:
            # A listener serving "openid" alone serves the OpenID userinfo endpoint only.
            root = api.openid_root if set(listener.resources) == {"openid"} else api.root
            root = api.metrics_root if "metrics" in listener.resources else root  # /metrics, /health
            site = MatrixSite(root, max_body_bytes=config.http.max_body_bytes, request_log_level=level,
                              uploads=api.media.uploads, metrics=metrics)
            if "federation" in listener.resources:
                site = MatrixSite(api.federation_root, max_body_bytes=config.federation.max_request_bytes,
                                  request_log_level=level, metrics=metrics)
            port = await serverFromString(reactor, listener.endpoint).listen(site)
            self._sites.append(site)
            self._ports.append(port)
            log.info("listening on {endpoint}", endpoint=listener.endpoint)
        log.info("ruma_tx serving {server_name}", server_name=config.server_name)

    async def _stop(self) -> None:
        for port in self._ports:
            stopped = port.stopListening()
            if stopped is not None:
                await stopped
        self._ports = []
        if self._notifier is not None:
            self._notifier.shutdown()  # long-polls answer at once
        await self._drain_requests()
        if self._push_delivery is not None:
            self._push_delivery.stop()
        if self._federation_sender is not None:
            self._federation_sender.stop()
        if self._activity is not None:
            await self._activity.stop()
        if self._sliding_sync_saver is not None:
            await self._sliding_sync_saver.stop()
        if self._media is not None:
            await self._media.repository.stop()
        if self._guest_eviction is not None:
            # Its leaves are events: they finish before the database closes.
            await self._guest_eviction.stop(self._config.http.shutdown_grace_s)
        if self._listener is not None:
            self._listener.close()
        if self._metrics is not None:
            self._metrics.stop()
        if self._database is not None:
            self._database.close()
        if self._cluster is not None:
            await self._cluster.stop()

    async def _drain_requests(self) -> None:
        """Wait for requests in flight, then drop whatever is left."""
        deadline = self._reactor.seconds() + self._config.http.shutdown_grace_s
        while any(site.in_flight for site in self._sites) and self._reactor.seconds() < deadline:
            await deferLater(self._reactor, 0.05, lambda: None)
        for site in self._sites:
            for request in list(site.in_flight):
                transport = request.channel.transport
                if transport is not None:
                    # TCP and TLS transports abort; plain ITransport does not say so.
                    cast(ITCPTransport, transport).abortConnection()


def log_failure(coroutine: Coroutine[Any, Any, object]) -> None:
    """Run a coroutine started by a notification; log (never raise) its failure."""
    defer.ensureDeferred(coroutine).addErrback(
        lambda failure: log.failure("handling a notification failed", failure))


def build_client_api(config: Config, database: Database, reactor: IRuntimeReactor, macaroon_key: bytes,
                     signing_key: SigningKey, stream_start: int, metrics: Metrics) -> ClientApi:
    """
    Wire the client API: stores, rules, handlers, endpoints.

    @return: the root resource, the device activity recorder (flushed at
        shutdown) and the auth guard (told of revocations made elsewhere).
    """
    notifier = Notifier(reactor, stream_start)
    streams = StreamWriter(StreamIdGenerator(stream_start), notifier)
    cross_signing_store = CrossSigningStore(database)
    federation = build_federation(config, database, reactor, signing_key)
    sending = build_sending(config.federation.enabled, database, federation, streams, reactor, config.server_name)
    device_list_store = DeviceListStore(database, config.server_name)
    # Other servers hear of our users' device changes as `key_queries` (built below) shows them their keys.
    device_lists = DeviceLists(store=cross_signing_store, streams=streams, published=device_list_publishers(
        sending=sending, store=device_list_store, keys=lambda user_id: key_queries.keys_for_servers(user_id),
        server_name=config.server_name))
    remote_device_lists = build_remote_device_lists(store=device_list_store, federation=federation, clock=reactor,
                                                    changed=device_lists.changed)
    accounts = AccountStore(database)
    devices = DeviceStore(database)
    tokens = TokenStore(database)
    activity = DeviceActivity(devices, reactor)
    activity.start()
    guard = Guard(
        macaroon_key=macaroon_key, tokens=tokens, clock=reactor,
        cache_size=config.tokens.cache_size, on_activity=activity.record,
    )
    limits = config.rate_limits
    rate_limiter = RateLimiter(
        reactor,
        {name: RateLimit(getattr(limits, name).per_second, getattr(limits, name).burst_count)
         for name in RATE_LIMITED_ACTIONS},
        enabled=limits.enabled,
    )
    hasher = PasswordHasher(reactor, config.passwords.bcrypt_rounds)
    passwords = PasswordChecker(accounts, hasher)
    controls = build_account_controls(database, accounts=accounts, guard=guard, clock=reactor,
                                      server_name=config.server_name)
    uia = UserInteractiveAuth(UiaStore(database), passwords.check, reactor, stages=controls.uia_stages)
    sessions = SessionIssuer(
        tokens=tokens, macaroon_key=macaroon_key, clock=reactor,
        access_token_lifetime_ms=config.tokens.refreshable_access_token_lifetime_ms,
        forget_tokens=guard.forget_tokens, devices_changed=device_lists.changed,
    )
    server_name = config.server_name
    registrar = Registrar(
        accounts=accounts, sessions=sessions, hasher=hasher, uia=uia, clock=reactor,
        server_name=server_name, registration_enabled=config.registration.enabled,
        guests_enabled=config.guests.enabled, guard=guard, tokens=controls.registration_tokens,
        requires_token=config.registration.requires_token,
    )
    device_manager = DeviceManager(devices=devices, activity=activity, uia=uia, sessions=sessions,
                                   server_name=server_name, device_changed=device_lists.changed)

    async def profile_of(user_id: str) -> tuple[str | None, str | None]:
        return await accounts.get_profile(user_id) or (None, None)

    events = EventStore(database)
    directory = DirectoryStore(database)
    push_store = PushStore(database)
    push_rules = PushRules(store=push_store, streams=streams)
    push_evaluator = PushEvaluator(rules=push_rules, store=push_store, server_name=server_name)
    unread_counts = UnreadCounts(store=push_store, clock=reactor)
    moderation = user_moderation(database)  # the admin API's shadow-bans, rate limit overrides and erasures
    typing = TypingTracker(events=events, streams=streams, clock=reactor, silenced=moderation.shadow_bans.is_banned,
                           changed=[sending.edus.typing_changed] if sending else [])
    relation_store = RelationStore(database)
    relation_checker = RelationChecker(store=relation_store)
    # `account_data` is built below; it does not depend on these.
    aggregations = Aggregator(store=relation_store, ignored=lambda user_id: account_data.ignored_users(user_id))
    # Other servers' history comes through `room_federation`, built below on `creator`.
    history = HistoryReader(events=events, history=HistoryStore(database),
                            current_position=lambda: streams.current, aggregations=aggregations,
                            erased=moderation.erased, remote=(lambda: room_federation.backfiller) if sending else None)
    rooms = RoomSections(reads=SyncReadStore(database), events=events, visible=history.filter_visible_rooms,
                         aggregations=aggregations, start_position=stream_start)
    # Its leaves go through `membership`, built below on `creator`.
    guests = GuestEviction(guests=accounts, clock=reactor,
                           leave=lambda user_id, room_id: membership.leave(user_id, room_id))
    outbound = OutboundHttpClient(reactor, blocklist=config.outbound.ip_range_blocklist,
                                  allowlist=config.outbound.ip_range_allowlist,
                                  timeout_s=config.outbound.timeout_s)
    pusher_store = PusherStore(database)
    room_caches = RoomCaches.build(database)
    push_delivery = PushDelivery(store=pusher_store, http=outbound, streams=streams, clock=reactor,
                                 settings=config.push.delivery_settings())
    dag_events = DagStore(database)
    dag = RoomDag(store=dag_events)
    creator = EventCreator(events=events, streams=streams, clock=reactor, withheld=moderation.shadow_bans.withheld,
                           server_name=server_name, signing_key=signing_key,
                           check_canonical_alias=CanonicalAliasCheck(directory=directory, events=events),
                           push=push_evaluator, relations=relation_checker.check,
                           dag_events=dag_events, dag=dag,
                           stored=[typing.event_stored, guests.event_stored, rooms.event_stored,
                                   push_delivery.event_stored, *room_caches.event_stored_hooks(),
                                   *([sending.sender.event_stored, remote_device_lists.event_stored]
                                     if sending else []),
                                   lambda event, position: presence.event_stored(event, position),
                                   metrics.event_stored],
                           remote_invite=(lambda invite, version: room_federation.membership.remote_invite(
                               invite, version)) if sending else None)
    room_federation = build_room_federation(federation=federation, creator=creator, events=events,
                                            dag_events=dag_events, dag=dag, profiles=profile_of, reactor=reactor,
                                            server_name=server_name, signing_key=signing_key, database=database,
                                            sending=sending)
    room_creator = RoomCreator(creator=creator, directory=directory, profiles=profile_of,
                               server_name=server_name, withheld=moderation.shadow_bans.withheld)
    membership = MembershipChanger(creator=creator, events=events, directory=directory,
                                   profiles=profile_of, server_name=server_name,
                                   remote=room_federation.membership if sending else None,
                                   remote_alias=federation.remote.alias if federation.remote else None,
                                   blocked=room_blocks(database).is_blocked)
    room_keys = RoomKeyStore(database)
    authenticator = Authenticator(
        accounts=accounts, sessions=sessions, hasher=hasher, uia=uia, server_name=server_name,
        on_deactivated=[membership.leave_all, room_keys.delete_all_for_user], erase=moderation.erased.set_erased,
    )
    lookups = remote_lookups(federation.client, reactor, enabled=config.federation.enabled)
    profiles = ProfileEditor(accounts=accounts, on_change=membership.update_profile, server_name=server_name,
                             remote=federation.remote.profile if federation.remote else None)
    filters = FilterKeeper(filters=FilterStore(database))
    account_data = AccountDataKeeper(store=AccountDataStore(database), streams=streams, events=events,
                                     managed_readers={"m.push_rules": push_rules.get_all})
    receipts = ReceiptKeeper(store=ReceiptStore(database), events=events, streams=streams,
                             account_data=account_data, clock=reactor, fits_thread=relation_checker.fits_thread,
                             read_moved=[push_delivery.read_moved],
                             receipt_stored=[sending.edus.receipt_stored] if sending else [])
    presence = PresenceTracker(store=PresenceStore(database), streams=streams, clock=reactor,
                               server_name=server_name, changed=[sending.edus.presence_changed] if sending else [])
    to_device = ToDeviceMessages(store=ToDeviceStore(database), streams=streams, clock=reactor,
                                 server_name=server_name, remote=sending.edus.to_device if sending else None)
    key_store = KeyStore(database)
    device_keys = DeviceKeys(store=key_store, streams=streams, clock=reactor, server_name=server_name,
                             on_device_keys_changed=device_lists.changed, remote=lookups.keys)
    key_queries = KeyQueries(device_keys=key_store.get_device_keys_of_users, store=cross_signing_store,
                             device_lists=device_lists, server_name=server_name,
                             stream_ids=device_list_store.get_stream_id,
                             remote=remote_device_lists if lookups.keys else None)
    memberships = UserMemberships(events=events, notifier=notifier)
    sync = SyncResponder(events=events, rooms=rooms, notifier=notifier, clock=reactor, memberships=memberships,
                         sources=[push_rules, typing, receipts, account_data, presence,
                                  unread_counts, to_device, device_lists,
                                  device_keys],  # device_keys last: see DeviceKeys.add_to_sync
                         ignored=account_data.ignored_users)
    sliding_sync = build_sliding_sync(
        caches=room_caches, reads=SyncReadStore(database), events=events, memberships=memberships,
        notifier=notifier, clock=reactor, visible=history.filter_visible_rooms, aggregations=aggregations,
        unread_counts=unread_counts, account_data=account_data, presence=presence,
        sources=ExtensionSources(account_data=[push_rules, account_data], receipts=receipts, typing=typing,
                                 to_device=to_device, e2ee=[device_lists, device_keys]))
    directory_handler = Directory(directory=directory, events=events, creator=creator, accounts=accounts,
                                  server_name=server_name,
                                  remote_alias=federation.remote.alias if federation.remote else None,
                                  remote_rooms=lookups.public_rooms)
    openid = OpenIdTokens(store=OpenIdStore(database), clock=reactor, server_name=server_name)
    legacy_reads = LegacyEventStore(database)
    legacy = LegacyApi(
        stream=EventStream(reads=legacy_reads, events=events, history=history, notifier=notifier, clock=reactor,
                           current_position=lambda: streams.current, ignored=account_data.ignored_users),
        initial_sync=InitialSync(events=events, reads=SyncReadStore(database), legacy=legacy_reads,
                                 history=history, rooms=RoomReader(events=events, history=history),
                                 account_data=account_data, presence=presence,
                                 current_position=lambda: streams.current, ignored=account_data.ignored_users))
    room_summaries = RoomSummaryStore(database)
    room_upgrader = RoomUpgrader(creator=creator, events=events, directory=directory,
                                 upgrades=RoomUpgradeStore(database), summaries=room_summaries,
                                 account_data=account_data, push_rules=push_rules, profiles=profile_of,
                                 server_name=server_name)
    reports = ContentReports(reports=ReportStore(database), events=events, history=history, accounts=accounts,
                             clock=reactor, server_name=server_name)
    search_index = SearchStore(database)
    search_backfill = SearchBackfill(search_index, reactor)
    search_backfill.start()   # events stored before the index existed
    search = SearchApi(
        search=RoomSearch(history=history, index=search_index, state=SyncReadStore(database),
                          ignored_users=account_data.ignored_users, current_position=lambda: streams.current),
        directory=UserDirectory(index=UserDirectoryStore(database),
                                search_all_users=config.user_directory.search_all_users))
    media = build_media(config, database, reactor, outbound,
                        federation=federation.client if config.federation.enabled else None)
    room_summary_reader = RoomSummaries(summaries=room_summaries, events=events, directory=directory, clock=reactor)
    apis = [
        MetaApi(public_baseurl=config.public_baseurl,
                room_versions={version: "stable" for version in ROOM_VERSIONS},
                default_room_version=DEFAULT_ROOM_VERSION.identifier,
                may_moderate=controls.restrictions.may_moderate),
        RegisterApi(registrar),
        LoginApi(authenticator),
        AccountApi(authenticator),
        DeviceApi(device_manager),
        ProfileApi(profiles),
        RoomApi(rooms=room_creator, creator=creator, membership=membership,
                reader=RoomReader(events=events, history=history)),
        FilterApi(filters),
        SyncApi(sync=sync, filters=filters.get_parsed, presence=presence.set_from_sync),
        sliding_sync.api,
        PushRulesApi(push_rules),
        PushersApi(Pushers(store=pusher_store, clock=reactor, current_position=lambda: streams.current,
                           changed=push_delivery.pushers_changed)),
        NotificationsApi(NotificationList(store=pusher_store, current_position=lambda: streams.current)),
        HistoryApi(history),
        RelationsApi(RelationsReader(events=events, history=history, store=relation_store,
                                     aggregations=aggregations, ignored=account_data.ignored_users,
                                     current_position=lambda: streams.current)),
        DirectoryApi(directory_handler),
        EphemeralApi(typing=typing, receipts=receipts),
        AccountDataApi(account_data),
        PresenceApi(presence),
        ToDeviceApi(to_device),
        KeysApi(device_keys),
        CrossSigningApi(
            queries=key_queries,
            cross_signing=CrossSigning(store=cross_signing_store,
                                       device_keys=key_store.get_device_keys_of_users, devices=devices,
                                       uia=uia, device_lists=device_lists,
                                       server_name=server_name)),
        RoomKeysApi(KeyBackup(room_keys)),
        RoomUpgradeApi(room_upgrader),
        SpacesApi(summaries=room_summary_reader,
                  mutual_rooms=MutualRooms(summaries=room_summaries)),
        ReportApi(reports),
        OpenIdApi(openid),
        OpenIdUserInfoApi(openid),
        VoipApi(TurnServer(settings=config.voip.turn_settings(), allow_guests=config.voip.turn_allow_guests,
                           clock=reactor)),
        SupportApi(support_body(config.well_known.support_page, config.well_known.support_contacts)),
        legacy,
        search,
        *media.apis,
        *admin_apis(AdminParts(accounts=accounts, database=database, reactor=reactor, server_name=server_name,
                               media=media.repository, events=events, rooms=room_creator, membership=membership,
                               creator=creator, account_data=account_data, search_backfill=search_backfill,
                               sender=sending.sender if sending else None,
                               notices=config.server_notices.settings(server_name), controls=controls,
                               authenticator=authenticator, hasher=hasher, profiles=profiles,
                               devices=device_manager, history=history, moderation=moderation)),
    ]
    health, metrics_root = build_observability(metrics, database=database, notifier=notifier, streams=streams,
                                               sender=sending.sender if sending else None, reactor=reactor,
                                               guard=guard, rate_limiter=rate_limiter)
    router = Router([*apis, health], guard=guard, rate_limiter=rate_limiter, admins=AdminAccess(accounts),
                    rate_overrides=moderation.rate_overrides)
    openid_router = Router([OpenIdUserInfoApi(openid)], guard=guard, rate_limiter=rate_limiter)
    federation_root = federation.root(
        [FederationQueryApi(profiles=profiles, directory=directory_handler, server_name=server_name,
                            version=software_version()),
         *federation_lookup_apis(queries=key_queries, keys=device_keys, directory=directory_handler,
                                 summaries=room_summary_reader),
         *federation_media_apis(media.repository, config),
         federation_rooms_api(room_federation, typing=typing, receipts=receipts, presence=presence,
                              to_device=to_device, device_lists=remote_device_lists, sending=sending),
         federation_reads_api(room_federation, database=database, events=events, dag_events=dag_events, dag=dag,
                              clock=reactor, server_name=server_name, current_position=lambda: streams.current)],
        guard=guard)
    return ClientApi(root=MatrixRoot(router.resource()), openid_root=MatrixRoot(openid_router.resource()),
                     federation_root=federation_root, metrics_root=metrics_root,
                     activity=activity, guard=guard, notifier=notifier, device_lists=device_lists,
                     push_delivery=push_delivery, media=media, guest_eviction=guests,
                     sliding_sync_saver=sliding_sync.saver, federation_sender=sending.sender if sending else None)
