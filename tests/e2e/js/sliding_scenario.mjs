/**
 * matrix-js-sdk's sliding sync (what Element Web runs with "simplified
 * sliding sync" on) against ruma_tx: its SlidingSync class speaks the
 * unstable org.matrix.simplified_msc3575 path, and SlidingSyncSdk turns the
 * answers into the SDK's Room objects, which is what the scenario checks.
 *
 * Usage: node sliding_scenario.mjs BASE_URL
 *
 * Alice (a client that does not sync) creates three rooms: a named one
 * with more history than the room list's timeline holds, an unnamed
 * direct chat, and a named room she only invites Bob to. Bob's client runs
 * on sliding sync with a room list like Element Web's and the extensions
 * the SDK registers (to_device, e2ee with its Rust crypto, account_data,
 * typing, receipts). His client shows the rooms, their names and member
 * counts and the invite; a new message lands in the live timeline and
 * bumps its room to the top; he joins the invited room; Alice's typing
 * and read receipt reach him; a room subscription (a room opened in
 * Element) brings a room's whole state and longer timeline; he paginates
 * back with /messages from the room's prev_batch; a room he tags as a
 * favourite and a to-device message from Alice come through their
 * extensions; and the sliding sync loop never met an error.
 *
 * Reports steps as scenario.mjs describes.
 */
import { ClientEvent, EventType, ReceiptType } from "matrix-js-sdk";
import {
    MSC3575_STATE_KEY_LAZY,
    MSC3575_STATE_KEY_ME,
    MSC3575_WILDCARD,
    SlidingSync,
    SlidingSyncEvent,
    SlidingSyncState,
} from "matrix-js-sdk/lib/sliding-sync.js";

import { check, logToStderr, newSession, runScenarioMain, startSyncing, waitFor } from "./scenario.mjs";

logToStderr();

/** The list Element Web's room list asks for (its own name for it). */
const ROOM_LIST = "room_list";
const LIST_TIMELINE_LIMIT = 10;
/** Messages in the lounge before Bob's client starts: more than the list's timeline holds. */
const LOUNGE_HISTORY = 15;
/** Messages in the invited room before Bob joins: more than an opened room's timeline holds. */
const HERON_HISTORY = 55;
/** Element Web's long-poll timeout. */
const SLIDING_SYNC_TIMEOUT_MS = 20_000;

/** State Element Web's room list wants of each room. */
const ROOM_LIST_REQUIRED_STATE = [
    [EventType.RoomJoinRules, ""],
    [EventType.RoomAvatar, ""],
    [EventType.RoomCanonicalAlias, ""],
    [EventType.RoomTombstone, ""],
    [EventType.RoomEncryption, ""],
    [EventType.RoomCreate, ""],
    [EventType.RoomMember, MSC3575_STATE_KEY_ME],
    [EventType.RoomMember, MSC3575_STATE_KEY_LAZY],
];

/** What Element Web subscribes to when a room is opened: all state, a longer timeline. */
const OPENED_ROOM = {
    timeline_limit: 50,
    required_state: [[MSC3575_WILDCARD, MSC3575_WILDCARD]],
};

class Scenario {
    constructor(baseUrl) {
        this.baseUrl = baseUrl;
        this.alice = null;
        this.bob = null;
        this.slidingSync = null;
        /** Every error the SDK's sliding sync loop met (it silently starts over after a 400). */
        this.syncErrors = [];
        /** The raw responses, for what the SDK does not keep (the extensions it consumed). */
        this.responses = [];
    }

    steps() {
        return [
            ["register", []],
            ["create_rooms", ["register"]],
            ["room_list", ["create_rooms"]],
            ["new_message", ["room_list"]],
            ["join_invite", ["room_list"]],
            ["typing", ["room_list"]],
            ["read_receipt", ["new_message"]],
            ["room_subscription", ["join_invite"]],
            ["scrollback", ["room_list"]],
            ["favourite", ["room_list"]],
            ["to_device", ["room_list"]],
            ["no_sync_errors", ["room_list"]],
        ];
    }

    async close() {
        this.alice?.stopClient();
        this.bob?.stopClient();
    }

    /** Bob's SDK room for C{roomId}, once his client has it. */
    bobRoom(roomId) {
        return this.bob.getRoom(roomId);
    }

    /** Bob's rooms as Element Web's recency order puts them with sliding sync: by bump stamp. */
    byRecency() {
        return this.bob.getRooms()
            .sort((a, b) => (b.getBumpStamp() ?? 0) - (a.getBumpStamp() ?? 0))
            .map((r) => r.roomId);
    }

    /** Alice sends C{count} numbered messages C{text N} to C{roomId}; their event ids. */
    async history(roomId, text, count) {
        const ids = [];
        for (let i = 1; i <= count; i++) {
            ids.push((await this.alice.sendTextMessage(roomId, `${text} ${i}`)).event_id);
        }
        return ids;
    }

    // -- steps --------------------------------------------------------------

    async register() {
        this.alice = await newSession(this.baseUrl, "ssalice", "Alice Pelican");
        this.bob = await newSession(this.baseUrl, "ssbob", "Bob Cormorant");
        return `${this.alice.getUserId()}, ${this.bob.getUserId()}`;
    }

    async create_rooms() {
        const bobId = this.bob.getUserId();
        ({ room_id: this.loungeId } = await this.alice.createRoom({
            name: "Pelican Lounge", topic: "Fish, mostly", preset: "private_chat", invite: [bobId],
        }));
        await this.bob.joinRoom(this.loungeId);
        this.loungeMessages = await this.history(this.loungeId, "Pelican fact", LOUNGE_HISTORY);
        ({ room_id: this.dmId } = await this.alice.createRoom({
            is_direct: true, preset: "trusted_private_chat", invite: [bobId],
        }));
        await this.bob.joinRoom(this.dmId);
        ({ room_id: this.heronId } = await this.alice.createRoom({
            name: "Heron Watch", topic: "Herons only", preset: "private_chat", invite: [bobId],
        }));
        // Shared history: Bob sees it once he joins.
        await this.history(this.heronId, "Heron sighting", HERON_HISTORY);
        return `lounge ${this.loungeId}, direct chat ${this.dmId}, invite to ${this.heronId}`;
    }

    async room_list() {
        // As Element Web: the Rust crypto first (it brings the e2ee extension), then sliding sync.
        await this.bob.initRustCrypto({ useIndexedDB: false });
        const lists = new Map([[ROOM_LIST, {
            ranges: [[0, 9]],
            timeline_limit: LIST_TIMELINE_LIMIT,
            required_state: ROOM_LIST_REQUIRED_STATE,
        }]]);
        this.slidingSync = new SlidingSync(this.bob.baseUrl, lists, OPENED_ROOM, this.bob, SLIDING_SYNC_TIMEOUT_MS);
        this.slidingSync.on(SlidingSyncEvent.Lifecycle, (state, response, error) => {
            if (error) this.syncErrors.push(`${error.httpStatus ?? ""} ${error.errcode ?? ""} ${error.message}`);
            if (state === SlidingSyncState.RequestFinished && response) this.responses.push(response);
        });
        await startSyncing(this.bob, { slidingSync: this.slidingSync });

        const lounge = await waitFor(() => this.bobRoom(this.loungeId), "the lounge in bob's client");
        check(lounge.name === "Pelican Lounge", `the lounge is called ${lounge.name}`);
        check(lounge.getMyMembership() === "join", `bob's lounge membership is ${lounge.getMyMembership()}`);
        check(lounge.getJoinedMemberCount() === 2, `the lounge has ${lounge.getJoinedMemberCount()} joined members`);

        // An unnamed direct chat is named after the other member (the server's heroes).
        const dm = await waitFor(() => this.bobRoom(this.dmId), "the direct chat in bob's client");
        check(dm.name === "Alice Pelican", `the direct chat is called ${dm.name}`);
        check(dm.getJoinedMemberCount() === 2, `the direct chat has ${dm.getJoinedMemberCount()} joined members`);

        const heron = await waitFor(() => this.bobRoom(this.heronId), "the invite in bob's client");
        check(heron.getMyMembership() === "invite", `bob's membership of Heron Watch is ${heron.getMyMembership()}`);
        check(heron.name === "Heron Watch", `the invite is called ${heron.name}`);
        const invite = heron.getMember(this.bob.getUserId())?.events.member;
        check(invite?.getSender() === this.alice.getUserId(), `the invite was sent by ${invite?.getSender()}`);

        const listed = this.slidingSync.getListData(ROOM_LIST)?.joinedCount;
        check(listed === 3, `the room list counts ${listed} rooms`);
        // The lounge's last message is older than the other two rooms.
        const order = this.byRecency();
        check(order.at(-1) === this.loungeId, `by recency the rooms are ${order}`);
        // The list's timeline: the last LIST_TIMELINE_LIMIT events, the earlier ones to paginate.
        const shown = lounge.getLiveTimeline().getEvents().map((e) => e.getId());
        check(shown.at(-1) === this.loungeMessages.at(-1) && shown.length === LIST_TIMELINE_LIMIT,
            `the lounge's timeline holds ${shown.length} events ending with ${shown.at(-1)}`);
        return `3 rooms: "${lounge.name}", "${dm.name}", "${heron.name}" (invite from ${invite.getSender()})`;
    }

    async new_message() {
        const { event_id: eventId } = await this.alice.sendTextMessage(this.loungeId, "A new pelican fact");
        this.newMessageId = eventId;
        const event = await waitFor(
            () => this.bobRoom(this.loungeId).getLiveTimeline().getEvents().find((e) => e.getId() === eventId),
            "the new message in bob's live timeline");
        check(event.getContent().body === "A new pelican fact", `bob sees ${JSON.stringify(event.getContent())}`);
        const last = this.bobRoom(this.loungeId).getLastLiveEvent();
        check(last?.getId() === eventId, `the lounge's last live event is ${last?.getId()}`);
        const order = await waitFor(() => this.byRecency()[0] === this.loungeId && this.byRecency(),
            "the lounge at the top of bob's room list");
        return `bob's room list by recency: ${order.join(", ")}`;
    }

    async join_invite() {
        await this.bob.joinRoom(this.heronId);
        const heron = await waitFor(() => this.bobRoom(this.heronId)?.getMyMembership() === "join"
            && this.bobRoom(this.heronId), "Heron Watch joined in bob's client");
        check(heron.name === "Heron Watch", `the joined room is called ${heron.name}`);
        await waitFor(() => heron.getJoinedMemberCount() === 2,
            `two joined members of Heron Watch, not ${heron.getJoinedMemberCount()}`);
        return `joined, ${heron.getJoinedMemberCount()} members`;
    }

    async typing() {
        await this.alice.sendTyping(this.dmId, true, 30_000);
        const aliceId = this.alice.getUserId();
        await waitFor(() => this.bobRoom(this.dmId).getMember(aliceId)?.typing,
            "alice typing in bob's direct chat");
        await this.alice.sendTyping(this.dmId, false, 0);
        await waitFor(() => this.bobRoom(this.dmId).getMember(aliceId)?.typing === false,
            "alice no longer typing in bob's client");
        return "alice typing, then not";
    }

    async read_receipt() {
        const room = this.bobRoom(this.loungeId);
        const event = room.findEventById(this.newMessageId);
        await this.alice.sendReadReceipt(event, ReceiptType.Read);
        const aliceId = this.alice.getUserId();
        const receipt = await waitFor(
            () => room.getReceiptsForEvent(event).find((r) => r.userId === aliceId && r.type === ReceiptType.Read),
            "alice's read receipt in bob's client");
        check(room.hasUserReadEvent(aliceId, this.newMessageId), "bob's client says alice has not read the message");
        return `alice read ${this.newMessageId} at ${receipt.data.ts}`;
    }

    async room_subscription() {
        // Neither the room list nor the invite gave the power levels; opening the room (a
        // subscription to all its state) brings them, and Alice shows as the room's admin.
        const heron = this.bobRoom(this.heronId);
        const aliceId = this.alice.getUserId();
        check(!heron.currentState.getStateEvents(EventType.RoomPowerLevels, ""), "the room list gave the power levels");
        this.slidingSync.modifyRoomSubscriptions(new Set([this.heronId]));
        await waitFor(() => heron.currentState.getStateEvents(EventType.RoomPowerLevels, ""),
            "Heron Watch's power levels from the room subscription");
        // (A room creator's level is infinite in room version 12.)
        const level = heron.getMember(aliceId)?.powerLevel;
        check(level >= 100, `alice's power level in bob's client is ${level}`);
        check(!heron.currentState.maySendStateEvent(EventType.RoomName, this.bob.getUserId()),
            "bob's client lets him rename the room");
        // ...and its longer timeline, the older events before the ones the list gave, in order.
        const events = await waitFor(() => {
            const shown = heron.getLiveTimeline().getEvents();
            return shown.length >= OPENED_ROOM.timeline_limit && shown;
        }, `${OPENED_ROOM.timeline_limit} events in Heron Watch's timeline`);
        const sightings = events.map((e) => e.getContent().body?.match(/^Heron sighting (\d+)$/)?.[1])
            .filter(Boolean).map(Number);
        check(sightings.every((n, i) => i === 0 || n === sightings[i - 1] + 1) && sightings.at(-1) === HERON_HISTORY,
            `the sightings are in the order ${sightings}`);
        check(events.at(-1).getType() === EventType.RoomMember && events.at(-1).getStateKey() === this.bob.getUserId(),
            `the timeline ends with ${events.at(-1).getType()}, not bob's join`);
        return `alice at power level ${level}, ${events.length} events, sightings ${sightings[0]} to ${sightings.at(-1)}`;
    }

    async scrollback() {
        const room = this.bobRoom(this.loungeId);
        const before = room.getLiveTimeline().getEvents().length;
        check(room.oldState.paginationToken, "no pagination token from the room list's prev_batch");
        await this.bob.scrollback(room, 30);
        const events = room.getLiveTimeline().getEvents();
        const ids = events.map((e) => e.getId());
        const missing = this.loungeMessages.filter((id) => !ids.includes(id));
        check(missing.length === 0, `after scrollback bob misses ${missing.length} of the lounge's messages`);
        check(events[0].getType() === EventType.RoomCreate, `the timeline starts with ${events[0].getType()}`);
        check(new Set(ids).size === ids.length, "scrollback repeated events");
        return `${before} -> ${events.length} events, back to the room's creation`;
    }

    async favourite() {
        // Element's "Favourite": a room tag, which comes back through the account_data extension.
        await this.bob.setRoomTag(this.dmId, "m.favourite", { order: 0.5 });
        const tag = await waitFor(() => this.bobRoom(this.dmId).tags["m.favourite"],
            "the favourite tag in bob's client");
        check(tag.order === 0.5, `the tag is ${JSON.stringify(tag)}`);
        return `the direct chat is a favourite (order ${tag.order})`;
    }

    async to_device() {
        const received = [];
        this.bob.on(ClientEvent.ReceivedToDeviceMessage, ({ message }) => received.push(message));
        const content = { fish: "sardine" };
        await this.alice.sendToDevice("org.example.pelican",
            new Map([[this.bob.getUserId(), new Map([[this.bob.getDeviceId(), content]])]]));
        const message = await waitFor(() => received.find((m) => m.type === "org.example.pelican"),
            "the to-device message in bob's client");
        check(message.sender === this.alice.getUserId() && message.content.fish === "sardine",
            `bob got ${JSON.stringify(message)}`);
        return `from ${message.sender}: ${JSON.stringify(message.content)}`;
    }

    async no_sync_errors() {
        check(this.syncErrors.length === 0, `the sliding sync loop met errors: ${this.syncErrors.join("; ")}`);
        // The crypto uploads one-time keys on start; the e2ee extension then counts them.
        const counted = this.responses.map((r) => r.extensions?.e2ee?.device_one_time_keys_count?.signed_curve25519)
            .filter((n) => n !== undefined);
        check(counted.at(-1) > 0, `the e2ee extension counted one-time keys ${counted}`);
        return `${this.responses.length} responses, none an error; one-time keys counted ${counted.join(", ")}`;
    }
}

await runScenarioMain(Scenario);
