/**
 * What the client library scenarios share (the Node.js side of
 * tests/e2e/scenario_steps.py): steps run in order, each reported as one
 * JSON line {"step", "ok", "detail"} on stdout; a step whose prerequisites
 * failed is reported as not run; the command line of a scenario script.
 * Also a real PNG made here, registration through the UIA dummy stage
 * with matrix-js-sdk, and starting a client's sync.
 */
import { Buffer } from "node:buffer";
import { deflateSync } from "node:zlib";

import { ClientEvent, createClient } from "matrix-js-sdk";
import { logger } from "matrix-js-sdk/lib/logger.js";

export const PASSWORD = "correct horse battery staple";
const STEP_TIMEOUT_MS = 30_000;
const WAIT_TIMEOUT_MS = 15_000;

export class StepFailed extends Error {}

export function check(condition, message) {
    if (!condition) throw new StepFailed(message);
}

function report(step, ok, detail) {
    process.stdout.write(JSON.stringify({ step, ok, detail: String(detail) }) + "\n");
}

/** Keep stdout for the step reports: the libraries log through console. */
export function logToStderr() {
    const toStderr = (...args) => process.stderr.write(args.map(String).join(" ") + "\n");
    console.log = console.info = console.debug = toStderr;
    logger.setLevel?.("warn");
}

/** Resolve with C{probe()}'s value once it is truthy (clients sync in the background). */
export async function waitFor(probe, what, timeoutMs = WAIT_TIMEOUT_MS) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const value = await probe();
        if (value) return value;
        if (Date.now() > deadline) throw new StepFailed(`timed out waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
    }
}

/**
 * Run C{steps}, a list of C{[method name, [names of the steps it needs]]},
 * on C{scenario}; return whether all passed.
 */
export async function runSteps(scenario, steps) {
    const results = {};
    for (const [name, requires] of steps) {
        const missing = requires.filter((r) => !results[r]);
        if (missing.length) {
            results[name] = false;
            report(name, false, `not run: needs ${missing.join(", ")}`);
            continue;
        }
        let timer;
        try {
            const timeout = new Promise((_, reject) => {
                timer = setTimeout(() => reject(new StepFailed(`step timed out after ${STEP_TIMEOUT_MS} ms`)),
                    STEP_TIMEOUT_MS);
            });
            const detail = await Promise.race([scenario[name](), timeout]);
            results[name] = true;
            report(name, true, detail);
        } catch (e) {
            results[name] = false;
            const detail = e instanceof StepFailed ? e.message
                : `${e?.name}: ${e?.message} ${e?.httpStatus ?? ""} ${JSON.stringify(e?.data ?? "")}\n${e?.stack}`;
            report(name, false, detail);
        } finally {
            clearTimeout(timer);
        }
    }
    return steps.every(([name]) => results[name]);
}

/**
 * The command line of a scenario script: C{node script.mjs BASE_URL}.
 * Runs C{new Scenario(baseUrl)}'s C{steps()}, then its C{close()} if it
 * has one, and exits 0 only if every step passed.
 */
export async function runScenarioMain(Scenario) {
    const baseUrl = process.argv[2];
    if (!baseUrl) {
        process.stderr.write(`usage: node ${process.argv[1]} BASE_URL\n`);
        process.exit(2);
    }
    const scenario = new Scenario(baseUrl.replace(/\/$/, ""));
    let ok = false;
    try {
        ok = await runSteps(scenario, scenario.steps());
    } finally {
        await scenario.close?.();
    }
    process.exit(ok ? 0 : 1);
}

/**
 * Start C{client} with C{options} (those of C{startClient}); resolve once
 * its first sync is done, reject if its sync reports an error.
 */
export async function startSyncing(client, options) {
    const synced = new Promise((resolve, reject) => {
        client.on(ClientEvent.Sync, (state, _previous, data) => {
            if (state === "PREPARED" || state === "SYNCING") resolve();
            if (state === "ERROR") reject(new StepFailed(`sync error: ${data?.error}`));
        });
    });
    await client.startClient(options);
    await synced;
}

/** A user name no earlier run took. */
export function uniqueLocalpart(prefix) {
    return `${prefix}${process.pid}x${Date.now() % 1e8}`;
}

/**
 * Register C{localpart} with matrix-js-sdk as Element does: the first
 * request gets the UIA challenge, the same body then completes the dummy
 * stage. Returns the registration response (user id, token, device).
 */
export async function register(baseUrl, localpart, deviceName) {
    const client = createClient({ baseUrl });
    const body = { username: localpart, password: PASSWORD, initial_device_display_name: deviceName };
    let session;
    try {
        await client.registerRequest(body);
        throw new StepFailed("registration without auth succeeded: no UIA");
    } catch (e) {
        if (e instanceof StepFailed) throw e;
        check(e.httpStatus === 401 && e.data?.session, `expected a 401 UIA challenge, got ${e}`);
        const flows = e.data.flows.map((f) => f.stages.join(","));
        check(flows.includes("m.login.dummy"), `no dummy flow among ${flows}`);
        session = e.data.session;
    }
    const response = await client.registerRequest({ ...body, auth: { type: "m.login.dummy", session } });
    check(response.user_id?.startsWith(`@${localpart}:`), `unexpected user id ${response.user_id}`);
    check(response.access_token, "no access token");
    return response;
}

/**
 * A new user, C{prefix} and a unique suffix, registered as L{register}
 * does and named C{displayName}: a matrix-js-sdk client of theirs (not
 * syncing yet).
 */
export async function newSession(baseUrl, prefix, displayName) {
    const session = await register(baseUrl, uniqueLocalpart(prefix), "matrix-js-sdk");
    const client = createClient({
        baseUrl, accessToken: session.access_token, userId: session.user_id, deviceId: session.device_id,
    });
    await client.setDisplayName(displayName);
    return client;
}

// -- a real PNG, made here -------------------------------------------------

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
});

function crc32(bytes) {
    let c = 0xffffffff;
    for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(kind, data) {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length, 0);
    head.write(kind, 4, "latin1");
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
    return Buffer.concat([head, data, crc]);
}

/** An RGB gradient PNG of C{width} x C{height} pixels, bluer with C{blue}. */
export function gradientPng(width, height, blue = 128) {
    const header = Buffer.alloc(13);
    header.writeUInt32BE(width, 0);
    header.writeUInt32BE(height, 4);
    header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB, no interlace
    const rows = Buffer.alloc(height * (1 + width * 3));
    for (let y = 0; y < height; y++) {
        const row = y * (1 + width * 3);
        for (let x = 0; x < width; x++) {
            rows.set([(x * 255) / width, (y * 255) / height, blue], row + 1 + x * 3);
        }
    }
    return Buffer.concat([
        Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
        pngChunk("IHDR", header),
        pngChunk("IDAT", deflateSync(rows)),
        pngChunk("IEND", Buffer.alloc(0)),
    ]);
}

/** The pixel size C{[width, height]} of a PNG or JPEG, or null. */
export function imageSize(bytes) {
    if (bytes.subarray(1, 4).toString("latin1") === "PNG") {
        return [bytes.readUInt32BE(16), bytes.readUInt32BE(20)];
    }
    if (bytes[0] === 0xff && bytes[1] === 0xd8) {
        for (let i = 2; i + 9 < bytes.length; ) {
            const marker = bytes[i + 1];
            if (marker >= 0xc0 && marker <= 0xc3) return [bytes.readUInt16BE(i + 7), bytes.readUInt16BE(i + 5)];
            i += 2 + bytes.readUInt16BE(i + 2);
        }
    }
    return null;
}

/**
 * Fetch a media URL built by a client library as a web client does: with
 * the access token in the Authorization header.
 */
export async function fetchMedia(accessToken, url) {
    const response = await fetch(url, { headers: { Authorization: `Bearer ${accessToken}` } });
    const body = Buffer.from(await response.arrayBuffer());
    check(response.ok, `GET ${url} answered ${response.status}: ${body.subarray(0, 300)}`);
    return { response, body };
}
