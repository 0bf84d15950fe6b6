/**
 * A real client library against ruma_tx: matrix-js-sdk, the engine of
 * Element Web, driven through its own client API (no raw requests except
 * the media fetches a browser would make from the SDK's URLs).
 *
 * Usage: node js_sdk_scenario.mjs BASE_URL
 *
 * Two users register (UIA dummy stage) and log in; each runs a syncing
 * client with thread support, as Element does. Alice creates a room and
 * invites Bob; she uploads a PNG and a text file and sends them as m.image
 * and m.file; Bob's client sees them and downloads them, and a thumbnail,
 * from the authenticated media URLs the SDK builds. Alice sets her avatar;
 * Bob reacts, and replies in a thread Alice started, which his client
 * lists through /threads; both search messages and the user directory.
 *
 * Each step prints one JSON line {"step", "ok", "detail"}; a step whose
 * prerequisites failed is reported as not run. The exit status is 0 only
 * if every step passed. Everything else (the SDK's own logging) goes to
 * stderr.
 */
import { Buffer } from "node:buffer";

import {
    createClient,
    Direction,
    RelationType,
    THREAD_RELATION_TYPE,
} from "matrix-js-sdk";

import {
    check,
    fetchMedia,
    gradientPng,
    imageSize,
    logToStderr,
    PASSWORD,
    register,
    runScenarioMain,
    startSyncing,
    uniqueLocalpart,
    waitFor,
} from "./scenario.mjs";

logToStderr();

const IMAGE = gradientPng(200, 150);
const FILE_TEXT = Buffer.from("Minutes of the pelican committee.\nItem 1: more fish.\n", "utf8");

// -- the scenario ------------------------------------------------------------

class Scenario {
    constructor(baseUrl) {
        this.baseUrl = baseUrl;
        this.localparts = [uniqueLocalpart("jsalice"), uniqueLocalpart("jsbob")];
        this.alice = null;
        this.bob = null;
    }

    steps() {
        return [
            ["register", []],
            ["login", ["register"]],
            ["sync", ["login"]],
            ["create_room", ["sync"]],
            ["join", ["create_room"]],
            ["upload_image", ["join"]],
            ["upload_file", ["join"]],
            ["see_media", ["upload_image", "upload_file"]],
            ["download_media", ["see_media"]],
            ["thumbnail", ["see_media"]],
            ["avatar", ["upload_image"]],
            ["react", ["see_media"]],
            ["thread", ["join"]],
            ["thread_list", ["thread"]],
            ["search_messages", ["upload_file", "thread"]],
            ["search_users", ["join"]],
        ];
    }

    async close() {
        this.alice?.stopClient();
        this.bob?.stopClient();
    }

    newClient(session = {}) {
        return createClient({ baseUrl: this.baseUrl, ...session });
    }

    /** The SDK's C{Room} for C{client}, once its sync has it. */
    room(client) {
        return client.getRoom(this.roomId);
    }

    /** Wait until C{client}'s timeline (or a thread of it) has the event. */
    async seen(client, eventId) {
        return waitFor(() => this.room(client)?.findEventById(eventId), `event ${eventId} in ${client.getUserId()}'s client`);
    }

    // -- steps --------------------------------------------------------------

    async register() {
        this.sessions = [];
        for (const localpart of this.localparts) {
            this.sessions.push(await register(this.baseUrl, localpart, "matrix-js-sdk"));
        }
        return this.sessions.map((s) => s.user_id).join(", ");
    }

    async login() {
        // Alice logs in again with her password (a second device), as a
        // returning Element user would; Bob keeps his registration session.
        const [alice, bob] = this.sessions;
        const anonymous = this.newClient();
        const flows = await anonymous.loginFlows();
        check(flows.flows.some((f) => f.type === "m.login.password"), "m.login.password not offered");
        const login = await anonymous.loginRequest({
            type: "m.login.password",
            identifier: { type: "m.id.user", user: this.localparts[0] },
            password: PASSWORD,
            initial_device_display_name: "matrix-js-sdk login",
        });
        check(login.user_id === alice.user_id, `logged in as ${login.user_id}`);
        check(login.device_id !== alice.device_id, "login reused the registration's device");
        this.alice = this.newClient({ accessToken: login.access_token, userId: login.user_id, deviceId: login.device_id });
        this.bob = this.newClient({ accessToken: bob.access_token, userId: bob.user_id, deviceId: bob.device_id });
        const who = await this.alice.whoami();
        check(who.user_id === login.user_id && who.device_id === login.device_id, `whoami says ${JSON.stringify(who)}`);
        await this.alice.setDisplayName("Alice Pelican");
        await this.bob.setDisplayName("Bob Cormorant");
        return `${login.user_id} on device ${login.device_id}`;
    }

    async sync() {
        for (const client of [this.alice, this.bob]) {
            // As Element Web: threads on, members loaded lazily.
            await startSyncing(client, { threadSupport: true, lazyLoadMembers: true, initialSyncLimit: 20 });
        }
        return `both clients synced; server thread support: ${await this.alice.doesServerSupportThread().then(JSON.stringify)}`;
    }

    async create_room() {
        const { room_id: roomId } = await this.alice.createRoom({
            name: "js-sdk room",
            topic: "images, files, threads",
            preset: "private_chat",
            invite: [this.bob.getUserId()],
        });
        this.roomId = roomId;
        const room = await waitFor(() => this.room(this.alice), "the new room in alice's client");
        check(room.name === "js-sdk room", `room name is ${room.name}`);
        await waitFor(() => this.room(this.bob)?.getMyMembership() === "invite", "the invite in bob's client");
        return roomId;
    }

    async join() {
        await this.bob.joinRoom(this.roomId);
        await waitFor(() => this.room(this.bob)?.getMyMembership() === "join", "bob's join in his client");
        await waitFor(() => this.room(this.alice)?.getJoinedMemberCount() === 2, "two joined members in alice's client");
        return "joined";
    }

    async upload_image() {
        const upload = await this.alice.uploadContent(IMAGE, { name: "gradient.png", type: "image/png" });
        check(upload.content_uri?.startsWith("mxc://"), `upload gave ${JSON.stringify(upload)}`);
        this.imageMxc = upload.content_uri;
        const sent = await this.alice.sendMessage(this.roomId, {
            msgtype: "m.image",
            body: "gradient.png",
            url: this.imageMxc,
            info: { mimetype: "image/png", size: IMAGE.length, w: 200, h: 150 },
        });
        this.imageEventId = sent.event_id;
        return `${this.imageMxc} in ${sent.event_id}`;
    }

    async upload_file() {
        const upload = await this.alice.uploadContent(new Blob([FILE_TEXT], { type: "text/plain" }),
            { name: "minutes.txt" });
        check(upload.content_uri?.startsWith("mxc://"), `upload gave ${JSON.stringify(upload)}`);
        this.fileMxc = upload.content_uri;
        const sent = await this.alice.sendMessage(this.roomId, {
            msgtype: "m.file",
            body: "minutes.txt",
            filename: "minutes.txt",
            url: this.fileMxc,
            info: { mimetype: "text/plain", size: FILE_TEXT.length },
        });
        this.fileEventId = sent.event_id;
        return `${this.fileMxc} in ${sent.event_id}`;
    }

    async see_media() {
        const image = await this.seen(this.bob, this.imageEventId);
        const file = await this.seen(this.bob, this.fileEventId);
        check(image.getContent().msgtype === "m.image" && image.getContent().url === this.imageMxc,
            `bob's image event has ${JSON.stringify(image.getContent())}`);
        check(file.getContent().msgtype === "m.file" && file.getContent().url === this.fileMxc,
            `bob's file event has ${JSON.stringify(file.getContent())}`);
        check(image.getSender() === this.alice.getUserId(), `image sent by ${image.getSender()}`);
        return "bob's timeline shows the m.image and the m.file";
    }

    async download_media() {
        const details = [];
        for (const [eventId, original, mimetype] of [[this.imageEventId, IMAGE, "image/png"],
            [this.fileEventId, FILE_TEXT, "text/plain"]]) {
            const content = this.room(this.bob).findEventById(eventId).getContent();
            const url = this.bob.mxcUrlToHttp(content.url, undefined, undefined, undefined, false, true, true);
            check(url.startsWith(`${this.baseUrl}/_matrix/client/v1/media/download/`), `the SDK built ${url}`);
            const { response, body } = await fetchMedia(this.bob.getAccessToken(), url);
            check(body.equals(original), `${content.body}: got ${body.length} bytes, not the ${original.length} uploaded`);
            check(response.headers.get("content-type")?.startsWith(mimetype),
                `${content.body} came back as ${response.headers.get("content-type")}`);
            check(response.headers.get("content-disposition")?.includes(content.body),
                `${content.body}: content-disposition ${response.headers.get("content-disposition")}`);
            details.push(`${content.body}: ${body.length} bytes`);
        }
        const unauthenticated = await fetch(this.bob.mxcUrlToHttp(this.fileMxc, undefined, undefined, undefined, false, true, true));
        check(unauthenticated.status === 401, `a download without a token answered ${unauthenticated.status}`);
        return details.join(", ");
    }

    async thumbnail() {
        // An avatar-sized crop, as Element asks for member avatars.
        const url = this.bob.mxcUrlToHttp(this.imageMxc, 32, 32, "crop", false, true, true);
        check(url.includes("/_matrix/client/v1/media/thumbnail/"), `the SDK built ${url}`);
        const { response, body } = await fetchMedia(this.bob.getAccessToken(), url);
        const type = response.headers.get("content-type");
        check(/^image\/(png|jpeg)$/.test(type), `thumbnail content-type ${type}`);
        const size = imageSize(body);
        check(size && size[0] === 32 && size[1] === 32, `thumbnail is ${size}, not 32x32`);
        return `${type} ${size.join("x")}`;
    }

    async avatar() {
        await this.alice.setAvatarUrl(this.imageMxc);
        const aliceId = this.alice.getUserId();
        const profile = await this.bob.getProfileInfo(aliceId);
        check(profile.avatar_url === this.imageMxc, `profile avatar_url is ${profile.avatar_url}`);
        const member = await waitFor(() => {
            const m = this.room(this.bob)?.getMember(aliceId);
            return m?.getMxcAvatarUrl() === this.imageMxc && m;
        }, "alice's new avatar in bob's member list");
        const url = member.getAvatarUrl(this.baseUrl, 48, 48, "crop", false, false, true);
        check(url?.includes("/_matrix/client/v1/media/thumbnail/"), `avatar URL ${url}`);
        const { body } = await fetchMedia(this.bob.getAccessToken(), url);
        check(imageSize(body)?.join("x") === "96x96", `avatar thumbnail is ${imageSize(body)}`);
        return `member avatar ${member.getMxcAvatarUrl()}`;
    }

    async react() {
        const { event_id: reactionId } = await this.bob.sendEvent(this.roomId, "m.reaction", {
            "m.relates_to": { rel_type: RelationType.Annotation, event_id: this.imageEventId, key: "👍" },
        });
        // Alice's client aggregates the annotation, as Element's reaction row does.
        const annotations = await waitFor(() => {
            const relations = this.room(this.alice)?.relations
                .getChildEventsForEvent(this.imageEventId, RelationType.Annotation, "m.reaction");
            return relations?.getSortedAnnotationsByKey()?.length && relations.getSortedAnnotationsByKey();
        }, "the reaction aggregated in alice's client");
        const [key, events] = annotations[0];
        check(key === "👍" && [...events].some((e) => e.getId() === reactionId),
            `alice's client aggregates ${JSON.stringify(annotations.map(([k, s]) => [k, s.size]))}`);
        // And the server's /relations lists it.
        const { events: related } = await this.alice.relations(this.roomId, this.imageEventId,
            RelationType.Annotation, "m.reaction");
        check(related.some((e) => e.getId() === reactionId), `/relations lists ${related.map((e) => e.getId())}`);
        return `reaction ${reactionId} aggregated under 👍`;
    }

    async thread() {
        const { event_id: rootId } = await this.alice.sendTextMessage(this.roomId, "Where do pelicans nest?");
        await this.seen(this.bob, rootId);
        // Bob replies in the thread, as Element's thread panel sends it.
        const { event_id: replyId } = await this.bob.sendMessage(this.roomId, rootId,
            { msgtype: "m.text", body: "On islands, mostly." });
        this.threadRootId = rootId;
        this.threadReplyId = replyId;
        const thread = await waitFor(() => {
            const t = this.room(this.alice)?.getThread(rootId);
            return t?.findEventById(replyId) && t;
        }, "the reply in alice's thread");
        check(thread.rootEvent?.getId() === rootId, `thread root ${thread.rootEvent?.getId()}`);
        const reply = thread.findEventById(replyId);
        check(reply.threadRootId === rootId, `reply's thread root is ${reply.threadRootId}`);
        check(!this.room(this.alice).getLiveTimeline().getEvents().some((e) => e.getId() === replyId),
            "the thread reply is in the main timeline too");
        // The server's relations for the root: the reply, as m.thread.
        const { events } = await this.alice.relations(this.roomId, rootId, THREAD_RELATION_TYPE.name, null,
            { dir: Direction.Backward });
        check(events.some((e) => e.getId() === replyId), `/relations m.thread lists ${events.map((e) => e.getId())}`);
        return `thread ${rootId}: ${thread.length} reply`;
    }

    async thread_list() {
        // What Element does when the threads panel opens.
        const room = this.room(this.bob);
        const sets = await room.createThreadsTimelineSets();
        check(sets, "the SDK made no thread timeline sets");
        await room.fetchRoomThreads();
        const listed = sets[0].getLiveTimeline().getEvents().map((e) => e.getId());
        check(listed.includes(this.threadRootId), `the all-threads list has ${listed}`);
        const mine = sets[1].getLiveTimeline().getEvents().map((e) => e.getId());
        check(mine.includes(this.threadRootId), `bob's my-threads list has ${mine}`);
        const root = room.findEventById(this.threadRootId);
        const summary = root.getServerAggregatedRelation(THREAD_RELATION_TYPE.name);
        check(summary?.count === 1 && summary.latest_event?.event_id === this.threadReplyId,
            `the root's thread summary is ${JSON.stringify(summary)}`);
        return `${listed.length} thread(s) listed, summary count ${summary.count}`;
    }

    async search_messages() {
        const results = await this.bob.searchRoomEvents({ term: "pelicans" });
        const found = results.results.map((r) => r.context.getEvent().getId());
        check(found.includes(this.threadRootId), `searching "pelicans" found ${found}`);
        const none = await this.bob.searchRoomEvents({ term: "albatross" });
        check(none.results.length === 0, `searching "albatross" found ${none.results.length}`);
        return `found ${found.length} for "pelicans"`;
    }

    async search_users() {
        const { results } = await this.alice.searchUserDirectory({ term: "cormorant" });
        const ids = results.map((r) => r.user_id);
        check(ids.includes(this.bob.getUserId()), `searching "cormorant" found ${ids}`);
        const bob = results.find((r) => r.user_id === this.bob.getUserId());
        check(bob.display_name === "Bob Cormorant", `bob is listed as ${bob.display_name}`);
        return `found ${ids.join(", ")}`;
    }
}

await runScenarioMain(Scenario);
