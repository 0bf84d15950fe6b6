/**
 * A real web client against ruma_tx: the Hydrogen web app (from
 * hydrogen-view-sdk, bundled here with esbuild) in headless Chromium,
 * driven through its own UI with Playwright; its peer is matrix-js-sdk
 * (Element's engine) in this process.
 *
 * Usage: node hydrogen_scenario.mjs BASE_URL
 *
 * Alice (matrix-js-sdk) and Bob register; Alice sets an avatar. Bob logs in
 * to Hydrogen with its login form and accepts Alice's invite there. Hydrogen
 * shows the image, the file and the avatar Alice sends (loading media from
 * the authenticated endpoints, with the token its service worker adds);
 * Bob sends a picture and a file from Hydrogen's composer, which Alice
 * downloads intact, and reacts from a message's menu; Alice's reaction
 * shows under Bob's file.
 *
 * Chromium is /usr/bin/chromium unless CHROMIUM names another. Each step
 * prints one JSON line {"step", "ok", "detail"} (see scenario.mjs).
 */
import { Buffer } from "node:buffer";
import { readFile } from "node:fs/promises";
import http from "node:http";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import * as esbuild from "esbuild";
import { createClient, RelationType } from "matrix-js-sdk";
import { chromium } from "playwright-core";

import {
    check,
    fetchMedia,
    gradientPng,
    logToStderr,
    PASSWORD,
    register,
    runScenarioMain,
    startSyncing,
    uniqueLocalpart,
    waitFor,
} from "./scenario.mjs";

logToStderr();

const HERE = dirname(fileURLToPath(import.meta.url));
const SDK = join(HERE, "node_modules", "hydrogen-view-sdk");
const OLM = join(HERE, "node_modules", "@matrix-org", "olm");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
// The flags this machine's closed network needs (no background connections).
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const UI_TIMEOUT_MS = 15_000;

const AVATAR = gradientPng(64, 64, 250);
const IMAGE = gradientPng(200, 150);
const FILE_TEXT = Buffer.from("Minutes of the pelican committee.\nItem 1: more fish.\n", "utf8");
const BOB_IMAGE = gradientPng(120, 90, 20);
const BOB_FILE = Buffer.from("Bob's notes: cormorants dive deeper.\n", "utf8");

const INDEX_HTML = `<!doctype html><html><head><meta charset="utf-8"><title>Hydrogen</title>
<link rel="stylesheet" href="/theme.css"></head>
<body class="hydrogen"><div id="app" class="hydrogen"></div><script type="module" src="/app.js"></script></body></html>`;

/** Serve the bundled app and the assets Hydrogen loads at run time; return the server. */
async function serveHydrogen() {
    const built = await esbuild.build({
        entryPoints: [join(HERE, "hydrogen_app.mjs")], bundle: true, format: "esm", platform: "browser",
        write: false, logLevel: "error",
        external: ["fs", "path", "crypto"], // olm.js's Node.js branch, never taken in a browser
    });
    const assets = join(SDK, "asset-build", "assets");
    // Each path: its content type and either its content or the file that has it.
    const routes = {
        "/": ["text/html", { content: INDEX_HTML }],
        "/index.html": ["text/html", { content: INDEX_HTML }], // what Hydrogen's service worker asks for "/"
        "/app.js": ["text/javascript", { content: built.outputFiles[0].contents }],
        "/sw.js": ["text/javascript", { file: join(SDK, "lib-build", "sw.js") }],
        "/main.js": ["text/javascript", { file: join(assets, "main.js") }],
        "/download-sandbox.html": ["text/html", { file: join(assets, "download-sandbox.html") }],
        "/theme.css": ["text/css", { file: join(assets, "theme-element-light.css") }],
        "/olm.js": ["text/javascript", { file: join(OLM, "olm.js") }],
        "/olm_legacy.js": ["text/javascript", { file: join(OLM, "olm_legacy.js") }],
        "/olm.wasm": ["application/wasm", { file: join(OLM, "olm.wasm") }],
    };
    const server = http.createServer(async (request, response) => {
        const { pathname } = new URL(request.url, "http://localhost");
        // Otherwise one of the theme's icons and fonts, named relative to /theme.css.
        const [type, { content, file }] = routes[pathname]
            ?? [undefined, { file: /^\/[\w-]+\.\w+$/.test(pathname) ? join(assets, pathname) : null }];
        try {
            const body = content ?? await readFile(file);
            response.writeHead(200, type ? { "content-type": type } : {});
            response.end(body);
        } catch {
            response.writeHead(404);
            response.end();
        }
    });
    await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
    return server;
}

class Scenario {
    constructor(baseUrl) {
        this.baseUrl = baseUrl;
        this.localparts = [uniqueLocalpart("hyalice"), uniqueLocalpart("hybob")];
    }

    steps() {
        return [
            ["register", []],
            ["login", ["register"]],
            ["accept_invite", ["login"]],
            ["show_image", ["accept_invite"]],
            ["show_file", ["accept_invite"]],
            ["show_avatar", ["show_image"]],
            ["send_image", ["accept_invite"]],
            ["send_file", ["accept_invite"]],
            ["react", ["show_image"]],
            ["show_reaction", ["send_file"]],
        ];
    }

    async close() {
        this.alice?.stopClient();
        await this.browser?.close();
        this.server?.close();
    }

    /** The event Alice's client has in the room, once C{match(event)} finds it. */
    async aliceSees(match, what) {
        return waitFor(() => this.alice.getRoom(this.roomId)?.getLiveTimeline().getEvents().find(match), what);
    }

    /** Hydrogen's timeline entry (an li) for a message from Alice (C{own}: from Bob) with C{inner}. */
    message(inner, own = false) {
        return this.page.locator(`.Timeline_message${own ? ".own" : ":not(.own)"}`, { has: this.page.locator(inner) });
    }

    /** Wait until the image C{locator} shows in the page: loaded, with pixels. */
    async loaded(locator, what) {
        const img = locator.first();
        await img.waitFor();
        await waitFor(() => img.evaluate((i) => i.complete && i.naturalWidth > 0), what);
        return img.getAttribute("src");
    }

    // -- steps --------------------------------------------------------------

    async register() {
        this.aliceSession = await register(this.baseUrl, this.localparts[0], "matrix-js-sdk");
        this.bobSession = await register(this.baseUrl, this.localparts[1], "matrix-js-sdk");
        this.alice = createClient({
            baseUrl: this.baseUrl, accessToken: this.aliceSession.access_token,
            userId: this.aliceSession.user_id, deviceId: this.aliceSession.device_id,
        });
        await this.alice.setDisplayName("Alice Pelican");
        const { content_uri: avatar } = await this.alice.uploadContent(AVATAR, { name: "avatar.png", type: "image/png" });
        await this.alice.setAvatarUrl(avatar);
        this.avatarMxc = avatar;
        await startSyncing(this.alice, { initialSyncLimit: 20 });
        return `${this.aliceSession.user_id} (avatar ${avatar}), ${this.bobSession.user_id}`;
    }

    async login() {
        this.server = await serveHydrogen();
        this.browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
        this.page = await this.browser.newPage();
        this.page.setDefaultTimeout(UI_TIMEOUT_MS);
        this.page.on("pageerror", (e) => console.error("[hydrogen] page error:", e.message));
        this.page.on("console", (m) => m.type() === "error" && console.error("[hydrogen]", m.text()));
        this.page.on("response", (r) => r.status() >= 400 && console.error("[hydrogen]", r.status(), r.url()));
        const app = `http://127.0.0.1:${this.server.address().port}/?hs=${encodeURIComponent(this.baseUrl)}`;
        await this.page.goto(app);
        // The homeserver field comes filled in; Hydrogen looks it up, then offers a password login.
        await this.page.locator(".PasswordLoginView #username").fill(this.localparts[1]);
        await this.page.locator(".PasswordLoginView #password").fill(PASSWORD);
        await this.page.locator(".PasswordLoginView button[type=submit]").click();
        await this.page.waitForURL(/#\/session\//);
        await this.page.locator(".SessionView").waitFor();
        return `Hydrogen logged in as ${this.bobSession.user_id}`;
    }

    async accept_invite() {
        const { room_id: roomId } = await this.alice.createRoom({
            name: "hydrogen room", preset: "private_chat", invite: [this.bobSession.user_id],
        });
        this.roomId = roomId;
        // Bob opens the invite from Hydrogen's room list and accepts it.
        await this.page.locator(".RoomList", { hasText: "hydrogen room" }).waitFor();
        await this.page.getByText("hydrogen room", { exact: true }).first().click();
        await this.page.getByRole("button", { name: "Accept" }).click();
        await this.page.locator(".MessageComposer").waitFor();
        await waitFor(() => this.alice.getRoom(roomId)?.getJoinedMemberCount() === 2, "bob's join in alice's client");
        return roomId;
    }

    async show_image() {
        const { content_uri: url } = await this.alice.uploadContent(IMAGE, { name: "gradient.png", type: "image/png" });
        const { event_id: eventId } = await this.alice.sendMessage(this.roomId, {
            msgtype: "m.image", body: "gradient.png", url,
            info: { mimetype: "image/png", size: IMAGE.length, w: 200, h: 150 },
        });
        this.imageEventId = eventId;
        const src = await this.loaded(this.message(".media img").locator(".media img"), "alice's image in Hydrogen");
        const mediaId = url.split("/").pop();
        check(src.startsWith(`${this.baseUrl}/_matrix/client/v1/media/thumbnail/`) && src.includes(mediaId),
            `Hydrogen shows the image from ${src}`);
        return `shown from ${src}`;
    }

    async show_file() {
        const { content_uri: url } = await this.alice.uploadContent(FILE_TEXT, { name: "minutes.txt", type: "text/plain" });
        await this.alice.sendMessage(this.roomId, {
            msgtype: "m.file", body: "minutes.txt", filename: "minutes.txt", url,
            info: { mimetype: "text/plain", size: FILE_TEXT.length },
        });
        const label = await this.message("button.link", false).getByRole("button", { name: /minutes\.txt/ })
            .first().textContent();
        return `file tile: ${label}`;
    }

    async show_avatar() {
        const src = await this.loaded(this.message(".media img").locator(".avatar img"), "alice's avatar in Hydrogen");
        check(src.includes(this.avatarMxc.split("/").pop()) && src.includes("/_matrix/client/v1/media/thumbnail/"),
            `Alice's avatar is drawn from ${src}`);
        return `avatar from ${src}`;
    }

    /** Send C{file} with the composer's attachment menu C{option}; return Alice's copy of the event. */
    async sendFromComposer(option, file) {
        await this.page.locator(".MessageComposer button.sendFile").click();
        const [chooser] = await Promise.all([
            this.page.waitForEvent("filechooser"),
            this.page.locator("button.menu-item", { hasText: option }).click(),
        ]);
        await chooser.setFiles(file);
        const bob = this.bobSession.user_id;
        return this.aliceSees((e) => e.getSender() === bob && e.getContent().body === file.name,
            `${file.name} from Hydrogen in alice's client`);
    }

    /** Download an event's attachment as Alice; check it is C{original}, byte for byte. */
    async aliceDownloads(event, original) {
        const url = this.alice.mxcUrlToHttp(event.getContent().url, undefined, undefined, undefined, false, true, true);
        const { body } = await fetchMedia(this.alice.getAccessToken(), url);
        check(body.equals(original), `${event.getContent().body}: ${body.length} bytes, not the ${original.length} sent`);
    }

    async send_image() {
        const event = await this.sendFromComposer("Send picture",
            { name: "cormorant.png", mimeType: "image/png", buffer: BOB_IMAGE });
        const content = event.getContent();
        check(content.msgtype === "m.image", `Hydrogen sent ${JSON.stringify(content)}`);
        check(content.info?.w === 120 && content.info?.h === 90, `image info ${JSON.stringify(content.info)}`);
        await this.aliceDownloads(event, BOB_IMAGE);
        return `m.image ${content.url}`;
    }

    async send_file() {
        const event = await this.sendFromComposer("Send file",
            { name: "notes.txt", mimeType: "text/plain", buffer: BOB_FILE });
        check(event.getContent().msgtype === "m.file", `Hydrogen sent ${JSON.stringify(event.getContent())}`);
        await this.aliceDownloads(event, BOB_FILE);
        this.bobFileEventId = event.getId();
        return `m.file ${event.getContent().url}`;
    }

    async react() {
        // Bob reacts to Alice's image from the message's menu.
        const image = this.message(".media img");
        await image.hover();
        await image.locator("button.Timeline_messageOptions").click();
        await this.page.getByRole("button", { name: "👍", exact: true }).click();
        const bob = this.bobSession.user_id;
        await waitFor(() => {
            const relations = this.alice.getRoom(this.roomId)?.relations
                .getChildEventsForEvent(this.imageEventId, RelationType.Annotation, "m.reaction");
            return relations?.getSortedAnnotationsByKey()
                ?.some(([key, events]) => key === "👍" && [...events].some((e) => e.getSender() === bob));
        }, "bob's 👍 aggregated in alice's client");
        return "👍 from Hydrogen reached alice";
    }

    async show_reaction() {
        await this.alice.sendEvent(this.roomId, "m.reaction", {
            "m.relates_to": { rel_type: RelationType.Annotation, event_id: this.bobFileEventId, key: "🎉" },
        });
        const shown = this.message(".Timeline_messageReactions", true).locator(".Timeline_messageReactions button");
        await shown.filter({ hasText: "🎉" }).first().waitFor();
        const text = (await shown.filter({ hasText: "🎉" }).first().textContent()).trim();
        check(text === "🎉 1", `Hydrogen shows the reaction as ${JSON.stringify(text)}`);
        return `Hydrogen shows ${text} under Bob's file`;
    }
}

await runScenarioMain(Scenario);
