"""Fixtures: a whole local network of real processes (anvil, deployed contracts,
`lilypad solver`; tests add `lilypad resource-provider` and `lilypad mediator`)."""

from __future__ import annotations

import pytest
from e2e_support import MEDIATOR, SOLVER, Network, address_of, deploy_contracts, free_port, start_anvil


@pytest.fixture
def network(tmp_path):
    """Anvil + contracts + solver. Tests start the providers and mediators they need."""
    rpc_port, solver_port = free_port(), free_port()
    root = tmp_path
    anvil = start_anvil(rpc_port, root / "logs" / "anvil.log")
    deployments = root / "deployments"
    deploy_contracts(rpc_port, deployments, root / "logs" / "deploy.log")
    env = {
        "APE_FOUNDRY_HOST": f"http://127.0.0.1:{rpc_port}",
        "LILYPAD_DEPLOYMENTS_DIR": str(deployments),
        "LILYPAD_SOLVER_URL": f"http://127.0.0.1:{solver_port}",
        "LILYPAD_SOLVER_ADDRESS": address_of(SOLVER),
        "LILYPAD_MEDIATORS": address_of(MEDIATOR),
        "LILYPAD_NETWORK": "ethereum:local:foundry",
        "PYTHONUNBUFFERED": "1",
    }
    net = Network(root, rpc_port, env["LILYPAD_SOLVER_URL"], env, {"anvil": anvil})
    net.lilypad("solver", "solver", "--network", "ethereum:local:foundry", "--port", str(solver_port),
                "--data-dir", str(root / "solver"), "--match-timeout", "20",
                key_index=SOLVER, port=solver_port)
    try:
        yield net
    finally:
        net.stop()

