"""verify_wiring finds every way a deployment record can be wrong."""

from __future__ import annotations

from lilypad.protocol.deploy import verify_wiring
from lilypad.protocol.deployments import Deployment


def _record(system, chain, **changes) -> Deployment:
    contracts = {key: c.address for key, c in system.items()}
    contracts.update(changes.pop("contracts", {}))
    fields = dict(ecosystem="ethereum", network="local", chain_id=chain.chain_id, deployer="0x" + "1" * 40,
                  block_number=0, contracts=contracts)
    fields.update(changes)
    return Deployment(**fields)


def test_a_good_deployment_has_no_problems(project, system, chain):
    assert verify_wiring(project, _record(system, chain)) == []


def test_wrong_chain_missing_code_and_miswiring_are_reported(project, system, chain, stranger, deployer):
    assert "deployment is for chain 1" in verify_wiring(project, _record(system, chain, chain_id=1))[0]
    no_code = verify_wiring(project, _record(system, chain, contracts={"storage": stranger.address}))
    assert no_code == [f"no code at storage address {stranger.address}"]
    # a second, unrelated system's controller: storage is bound to the first one
    other = project.LilypadController.deploy(deployer, system["token"], sender=deployer)
    problems = verify_wiring(project, _record(system, chain, contracts={"controller": other.address}))
    assert any("storage is bound to controller" in p for p in problems)
    assert any("getJobCreatorAddress" in p for p in problems)
