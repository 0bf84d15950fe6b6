"""
End-to-end encryption with Synapse, the reference homeserver, on loopback:
a matrix-nio user on each side (alice on ruma_tx, bob on Synapse) holds an
encrypted conversation both ways, and each one's new device reaches the
other's /sync and key queries (tests/e2e/e2ee_federation_scenario.py, in
a child process). The step tests are test_federation_e2ee.py's, run here
on this module's C{e2ee_results}. Skipped only when ../shared is absent.
"""
from __future__ import annotations

import pytest
from scenario_steps import run_scenario
from synapse_peer import needs_peer, ruma, synapse, synapse_environment  # noqa: F401 (fixtures)
from test_federation_e2ee import SCENARIO, test_federated_e2ee_step, test_scenario_covers_every_step  # noqa: F401

pytestmark = needs_peer


@pytest.fixture(scope="module")
def e2ee_results(synapse, ruma, tmp_path_factory):
    """Run the scenario once, alice on ruma_tx and bob on Synapse: C{step -> (ok, detail)}."""
    peer, _ = synapse
    stores = tmp_path_factory.mktemp("nio-synapse-stores")
    return run_scenario(SCENARIO, ruma.base_url, peer["CLIENT_URL"], str(stores))
