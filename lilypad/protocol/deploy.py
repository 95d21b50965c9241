"""Deploy and wire the whole protocol (used by ``scripts/deploy.py`` and the tests).

Order: token; controller, which creates storage, payments, mediation and the
mediator registry bound to itself for ever (no admin can re-point them); the
on-chain job creator; then the controller learns the job creator's address,
the treasury address and a protocol settings version are set when
:class:`DeploySettings` asks for them. The on-chain job creator has no relayer
role: anyone may relay its jobs; its defaults for plain ``runJob`` (maximum
payment, relayer fee, timeout, callback gas, check chance) are fixed at
deployment and change only after a delay (``proposeDefaults``).

The controller's constructor makes settings version 0, with every mechanism
off (no tax, no audits, no minimum mediator stake, no slashing); with
``DeploySettings.protocol_settings`` the deploy appends version 1 with those
values, which new deals must then name. The local devnet keeps version 0;
``ape run deploy`` on a public network applies
:data:`~lilypad.protocol.settings.NETWORK_SETTINGS` unless told otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lilypad.protocol.deployments import CONTRACT_NAMES, Deployment
from lilypad.protocol.settings import ProtocolSettings

__all__ = ["DeploySettings", "deploy_system", "verify_wiring", "ADMIN_ROLE", "MINTER_ROLE"]

ADMIN_ROLE = b"\x00" * 32


def _role(name: str) -> bytes:
    from eth_utils import keccak

    return keccak(text=name)


MINTER_ROLE = _role("MINTER_ROLE")
TOKEN = 10**18


class DeploySettings:
    def __init__(
        self,
        *,
        required_deposit: int = 4 * TOKEN,
        relayer_fee: int = TOKEN // 10,
        callback_gas_limit: int = 500_000,
        job_timeout: int = 2 * 3600,
        check_bps: int = 0,
        initial_supply: int = 0,
        protocol_settings: ProtocolSettings | None = None,
        treasury: str | None = None,
    ) -> None:
        #: Plain ``runJob``'s defaults (``JobOptions``): the deposit (its maximum payment),
        #: the relayer's fee out of it, the job timeout, the callback's gas and the check chance.
        self.required_deposit = required_deposit
        self.relayer_fee = relayer_fee
        self.callback_gas_limit = callback_gas_limit
        self.job_timeout = job_timeout
        self.check_bps = check_bps
        self.initial_supply = initial_supply
        #: The settings version to apply after deploying (tax, audits, minimum
        #: mediator stake, slashing); ``None`` keeps version 0, everything off.
        self.protocol_settings = protocol_settings
        #: Where the treasury's share of the tax is claimed to (``None``: not set yet).
        self.treasury = treasury


def deploy_system(
    project: Any,
    deployer: Any,
    *,
    settings: DeploySettings | None = None,
    fund: Iterable[Any] = (),
    fund_amount: int = 1_000 * TOKEN,
) -> tuple[Deployment, dict[str, Any]]:
    """Deploy everything with ``deployer``; return the deployment record and the instances."""
    from ape import chain, networks

    s = settings or DeploySettings()
    tx = {"sender": deployer}
    token = project.LilypadToken.deploy(deployer, s.initial_supply, **tx)
    controller = project.LilypadController.deploy(deployer, token, **tx)
    storage = project.LilypadStorage.at(controller.getStorageAddress())
    payments = project.LilypadPayments.at(controller.getPaymentsAddress())
    mediation = project.LilypadMediation.at(controller.getMediationAddress())
    mediator_registry = project.LilypadMediatorRegistry.at(controller.getMediatorRegistryAddress())
    defaults = (s.required_deposit, s.relayer_fee, s.job_timeout, s.callback_gas_limit, s.check_bps,
                "0x" + "00" * 20)
    job_creator = project.LilypadOnChainJobCreator.deploy(deployer, token, controller, defaults, **tx)
    controller.setJobCreatorAddress(job_creator, **tx)
    if s.treasury is not None:
        controller.setTreasury(s.treasury, **tx)
    if s.protocol_settings is not None:
        controller.setProtocolSettings(s.protocol_settings.as_tuple(), **tx)
    for account in fund:
        token.mint(account, fund_amount, **tx)

    instances = {
        "token": token,
        "storage": storage,
        "payments": payments,
        "mediation": mediation,
        "mediator_registry": mediator_registry,
        "controller": controller,
        "job_creator": job_creator,
    }
    network = networks.provider.network
    deployment = Deployment(
        ecosystem=network.ecosystem.name,
        network=network.name,
        chain_id=chain.chain_id,
        deployer=str(deployer.address),
        block_number=chain.blocks.head.number,
        contracts={key: str(c.address) for key, c in instances.items()},
    )
    problems = verify_wiring(project, deployment)
    if problems:
        from lilypad.exceptions import DeploymentError

        raise DeploymentError(problems)
    return deployment, instances


def verify_wiring(project: Any, deployment: Deployment) -> list[str]:
    """Every way the deployed system could be half-wired, as readable problems (empty: fine)."""
    from ape import chain

    problems: list[str] = []
    if chain.chain_id != deployment.chain_id:
        return [f"connected to chain {chain.chain_id}, deployment is for chain {deployment.chain_id}"]
    missing = [key for key in CONTRACT_NAMES if key not in deployment.contracts]
    if missing:
        return [f"deployments file lacks {', '.join(missing)}"]
    for key, address in deployment.contracts.items():
        if not chain.provider.get_code(address):
            problems.append(f"no code at {key} address {address}")
    if problems:
        return problems

    c = {key: project.get_contract(name).at(deployment.contracts[key]) for key, name in CONTRACT_NAMES.items()}
    controller = c["controller"].address
    for key in ("storage", "payments", "mediation", "mediator_registry"):
        if str(c[key].controller()).lower() != str(controller).lower():
            problems.append(f"{key} is bound to controller {c[key].controller()}, not {controller}")
    checks = {
        "controller.getTokenAddress": (c["controller"].getTokenAddress(), c["token"].address),
        "controller.getStorageAddress": (c["controller"].getStorageAddress(), c["storage"].address),
        "controller.getPaymentsAddress": (c["controller"].getPaymentsAddress(), c["payments"].address),
        "controller.getMediationAddress": (c["controller"].getMediationAddress(), c["mediation"].address),
        "controller.getMediatorRegistryAddress": (
            c["controller"].getMediatorRegistryAddress(), c["mediator_registry"].address),
        "controller.getJobCreatorAddress": (c["controller"].getJobCreatorAddress(), c["job_creator"].address),
        "job_creator.getControllerAddress": (c["job_creator"].getControllerAddress(), controller),
        "job_creator.getTokenAddress": (c["job_creator"].getTokenAddress(), c["token"].address),
        "payments.token": (c["payments"].token(), c["token"].address),
        "mediator_registry.token": (c["mediator_registry"].token(), c["token"].address),
    }
    for name, (actual, expected) in checks.items():
        if str(actual).lower() != str(expected).lower():
            problems.append(f"{name}() is {actual}, expected {expected}")
    return problems
