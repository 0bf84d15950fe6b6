/**
 * The Hydrogen web app, as its own start-up code mounts it, from
 * hydrogen-view-sdk: bundled by hydrogen_scenario.mjs and opened in
 * Chromium with ?hs=HOMESERVER (the login form's default).
 */
import { createNavigation, createRouter, FeatureSet, Platform, RootViewModel } from "hydrogen-view-sdk";

const platform = new Platform({
    container: document.getElementById("app"),
    assetPaths: {
        downloadSandbox: "/download-sandbox.html",
        worker: "/main.js",
        olm: { wasm: "/olm.wasm", legacyBundle: "/olm_legacy.js", wasmBundle: "/olm.js" },
        serviceWorker: "/sw.js",
    },
    config: { defaultHomeServer: new URLSearchParams(location.search).get("hs") },
    options: { development: false },
});
const navigation = createNavigation();
platform.setNavigation(navigation);
const urlRouter = createRouter({ navigation, history: platform.history });
urlRouter.attach();
const root = new RootViewModel({
    platform, navigation, urlRouter, features: await FeatureSet.load(platform.settingsStorage),
});
await root.load();
platform.createAndMountRootView(root);
