"""The protocol: every type and rule the roles (solver, job creator, resource
provider, mediator, bridge, client) share, as pure Python - no server, no
daemon loop.

* :mod:`~lilypad.protocol.deal` - deal terms (:class:`Deal`, its own JSON wire
  format), the deal id, agreement and job states and their contract names;
* :mod:`~lilypad.protocol.offers` - resource and job offers, machine specs,
  LP amounts and the controller's limits on deal terms;
* :mod:`~lilypad.protocol.signing` - EIP-712 signing and verifying of offers,
  offer ids, nonce registries;
* :mod:`~lilypad.protocol.auth` - signed requests other than offers (cancels,
  result and input uploads) and their HTTP headers;
* :mod:`~lilypad.protocol.inputs` - a job's input files: limits, tree checks,
  their CID and safe unpacking;
* :mod:`~lilypad.protocol.binding` - the deal's nonce that commits it to its
  job offer, and the check that a job shown for a deal is the one it is bound to;
* :mod:`~lilypad.protocol.cid` - CID text validation and the bytes32 digest
  the contracts store;
* :mod:`~lilypad.protocol.allowlist` - the module allowlist rule, for the
  matcher, the provider and the mediator alike;
* :mod:`~lilypad.protocol.fields` - shared pydantic field types (addresses,
  32-byte hex);
* :mod:`~lilypad.protocol.accounts`, :mod:`~lilypad.protocol.permit` - keys,
  ape accounts and EIP-2612 permits;
* :mod:`~lilypad.protocol.settings` - the controller's versioned protocol
  settings (tax, audits, rewards, mediator stakes and slashing) and their bounds;
* :mod:`~lilypad.protocol.deployments`, :mod:`~lilypad.protocol.deploy` - the
  deployments file, deploying (with a settings version) and checking the wiring.

Every public name of those modules is re-exported here (``from
lilypad.protocol import Deal, JobOffer, sign_offer``), imported on first use,
so importing one submodule stays cheap and pulls in no other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lilypad.protocol.accounts import (
        account_from_private_key,
        is_ape_account,
        load_ape_account,
        local_account_from_private_key,
        passphrase_variable,
        resolve_account,
        sign_signable,
        signer_address,
    )
    from lilypad.protocol.allowlist import (
        ALLOWLIST_ENV_VAR,
        Allowlist,
        AllowlistEntry,
        ModuleKey,
        compile_allowlist,
        module_allowed,
        module_key,
    )
    from lilypad.protocol.auth import (
        CID_HEADER,
        SHA256_HEADER,
        SIGNATURE_HEADER,
        cancel_typed_data,
        inputs_upload_message,
        recover_cancel_signer,
        recover_inputs_upload_signer,
        recover_upload_signer,
        sign_cancel,
        sign_inputs_upload,
        sign_upload,
        upload_message,
    )
    from lilypad.protocol.binding import (
        deal_binding_problems,
        deal_nonce,
        job_binding_problems,
    )
    from lilypad.protocol.cid import (
        ZERO_DIGEST,
        cid_to_digest,
        digest_to_cid,
        validate_cid,
    )
    from lilypad.protocol.contract_jobs import (
        MAX_ATTEMPTS,
        ContractJob,
        JobOptions,
        contract_deal_nonce,
        contract_offer_problems,
    )
    from lilypad.protocol.deal import (
        DEAL_ABI_TYPE,
        TERMINAL_STATES,
        TIMEOUT_FOR_STATE,
        AgreementState,
        Deal,
        DealMembers,
        DealPricing,
        DealProtocol,
        DealTimeouts,
        JobState,
        Verdict,
        parse_state,
        state_name,
    )
    from lilypad.protocol.deploy import (
        ADMIN_ROLE,
        MINTER_ROLE,
        DeploySettings,
        deploy_system,
        verify_wiring,
    )
    from lilypad.protocol.deployments import (
        CONTRACT_NAMES,
        Deployment,
        deployment_path,
        deployments_dir,
        load_deployment,
        save_deployment,
    )
    from lilypad.protocol.fields import (
        ZERO_ADDRESS,
        Address,
        HexBytes32,
        parse_address,
        parse_fixed_bytes,
    )
    from lilypad.protocol.inputs import (
        DEFAULT_MAX_INPUT_FILES,
        DEFAULT_MAX_INPUTS_BYTES,
        MAX_INPUT_FILE_BYTES,
        InputLimits,
        check_input_tree,
        inputs_cid,
        unpack_inputs,
    )
    from lilypad.protocol.offers import (
        DEFAULT_JOB_PRICING,
        DEFAULT_PROVIDER_SPEC,
        DEFAULT_RESOURCE_OFFER_TTL,
        DEFAULT_RESOURCE_PRICING,
        DEFAULT_TIMEOUTS,
        LP,
        LP_DECIMALS,
        MAX_DEAL_MEDIATORS,
        MAX_MODULE_ENTRIES,
        MAX_OFFER_MEDIATORS,
        MAX_RESULTS_COLLATERAL_MULTIPLE,
        MAX_TIMEOUT,
        JobModule,
        JobOffer,
        Offer,
        OfferKey,
        PricingMode,
        ResourceOffer,
        ResourceSpec,
        amounts_fit,
        lp,
        price_acceptable,
        resources_suffice,
        timeouts_acceptable,
    )
    from lilypad.protocol.permit import (
        Permit,
        PermitDomain,
        permit_typed_data,
        sign_permit,
    )
    from lilypad.protocol.settings import (
        DEVNET_DEAL_DEFAULTS,
        MAX_AUDIT_BPS,
        MAX_MIN_MEDIATOR_STAKE,
        MAX_REWARD_BPS,
        MAX_TAX_BPS,
        NETWORK_DEAL_DEFAULTS,
        NETWORK_SETTINGS,
        DealDefaults,
        ProtocolSettings,
        deal_defaults,
    )
    from lilypad.protocol.signing import (
        DOMAIN_NAME,
        DOMAIN_VERSION,
        EIP712_TYPES,
        MAX_CLOCK_SKEW,
        UNSIGNED,
        InMemoryNonceRegistry,
        NonceRegistry,
        OfferDomain,
        SignedOffer,
        offer_digest,
        offer_id,
        offer_typed_data,
        recover_signer,
        sign_offer,
        unsigned_offer,
        verify_offer,
    )

#: Where each re-exported name lives (module under ``lilypad.protocol``).
_MODULES: dict[str, tuple[str, ...]] = {
    "accounts": (
        "account_from_private_key", "is_ape_account", "load_ape_account", "local_account_from_private_key",
        "passphrase_variable", "resolve_account", "sign_signable", "signer_address",
    ),
    "allowlist": (
        "ALLOWLIST_ENV_VAR", "Allowlist", "AllowlistEntry", "ModuleKey", "compile_allowlist",
        "module_allowed", "module_key",
    ),
    "auth": (
        "CID_HEADER", "SHA256_HEADER", "SIGNATURE_HEADER", "cancel_typed_data", "inputs_upload_message",
        "recover_cancel_signer", "recover_inputs_upload_signer", "recover_upload_signer", "sign_cancel",
        "sign_inputs_upload", "sign_upload", "upload_message",
    ),
    "binding": (
        "deal_binding_problems", "deal_defaults", "deal_nonce", "job_binding_problems",
    ),
    "cid": (
        "ZERO_DIGEST", "cid_to_digest", "digest_to_cid", "validate_cid",
    ),
    "contract_jobs": (
        "ContractJob", "JobOptions", "MAX_ATTEMPTS", "contract_deal_nonce", "contract_offer_problems",
    ),
    "deal": (
        "AgreementState", "DEAL_ABI_TYPE", "Deal", "DealMembers", "DealPricing", "DealProtocol", "DealTimeouts",
        "JobState", "Verdict",
        "TERMINAL_STATES", "TIMEOUT_FOR_STATE", "parse_state", "state_name",
    ),
    "deploy": (
        "ADMIN_ROLE", "DeploySettings", "MINTER_ROLE", "deploy_system", "verify_wiring",
    ),
    "deployments": (
        "CONTRACT_NAMES", "Deployment", "deployment_path", "deployments_dir", "load_deployment",
        "save_deployment",
    ),
    "fields": (
        "Address", "HexBytes32", "ZERO_ADDRESS", "parse_address", "parse_fixed_bytes",
    ),
    "inputs": (
        "DEFAULT_MAX_INPUTS_BYTES", "DEFAULT_MAX_INPUT_FILES", "InputLimits", "MAX_INPUT_FILE_BYTES",
        "check_input_tree", "inputs_cid", "unpack_inputs",
    ),
    "offers": (
        "DEFAULT_JOB_PRICING", "DEFAULT_PROVIDER_SPEC", "DEFAULT_RESOURCE_OFFER_TTL",
        "DEFAULT_RESOURCE_PRICING", "DEFAULT_TIMEOUTS", "JobModule", "JobOffer", "LP", "LP_DECIMALS",
        "MAX_DEAL_MEDIATORS", "MAX_MODULE_ENTRIES", "MAX_OFFER_MEDIATORS", "MAX_RESULTS_COLLATERAL_MULTIPLE",
        "MAX_TIMEOUT", "Offer", "OfferKey", "PricingMode", "ResourceOffer", "ResourceSpec", "amounts_fit",
        "lp", "price_acceptable", "resources_suffice", "timeouts_acceptable",
    ),
    "permit": (
        "Permit", "PermitDomain", "permit_typed_data", "sign_permit",
    ),
    "settings": (
        "DEVNET_DEAL_DEFAULTS", "DealDefaults", "MAX_AUDIT_BPS", "MAX_MIN_MEDIATOR_STAKE", "MAX_REWARD_BPS",
        "MAX_TAX_BPS", "NETWORK_DEAL_DEFAULTS", "NETWORK_SETTINGS", "ProtocolSettings", "deal_defaults",
    ),
    "signing": (
        "DOMAIN_NAME", "DOMAIN_VERSION", "EIP712_TYPES", "InMemoryNonceRegistry", "MAX_CLOCK_SKEW",
        "NonceRegistry", "OfferDomain", "SignedOffer", "UNSIGNED", "offer_digest", "offer_id",
        "offer_typed_data", "recover_signer", "sign_offer", "unsigned_offer", "verify_offer",
    ),
}
_WHERE = {name: module for module, names in _MODULES.items() for name in names}

__all__ = [
    "ADMIN_ROLE", "ALLOWLIST_ENV_VAR", "Address", "AgreementState", "Allowlist", "AllowlistEntry", "CID_HEADER",
    "CONTRACT_NAMES", "ContractJob", "DEAL_ABI_TYPE", "DEFAULT_JOB_PRICING", "DEFAULT_MAX_INPUTS_BYTES",
    "DEFAULT_MAX_INPUT_FILES", "DEFAULT_PROVIDER_SPEC", "DEFAULT_RESOURCE_OFFER_TTL", "DEFAULT_RESOURCE_PRICING",
    "DEFAULT_TIMEOUTS", "DEVNET_DEAL_DEFAULTS", "DOMAIN_NAME", "DOMAIN_VERSION", "Deal", "DealDefaults",
    "DealMembers", "DealPricing", "DealProtocol", "DealTimeouts", "DeploySettings", "Deployment", "EIP712_TYPES",
    "HexBytes32", "InMemoryNonceRegistry", "InputLimits", "JobModule", "JobOffer", "JobOptions", "JobState", "LP",
    "LP_DECIMALS", "MAX_ATTEMPTS", "MAX_AUDIT_BPS", "MAX_CLOCK_SKEW", "MAX_DEAL_MEDIATORS", "MAX_INPUT_FILE_BYTES",
    "MAX_MIN_MEDIATOR_STAKE", "MAX_MODULE_ENTRIES", "MAX_OFFER_MEDIATORS", "MAX_RESULTS_COLLATERAL_MULTIPLE",
    "MAX_REWARD_BPS", "MAX_TAX_BPS", "MAX_TIMEOUT", "MINTER_ROLE", "ModuleKey", "NETWORK_DEAL_DEFAULTS",
    "NETWORK_SETTINGS", "NonceRegistry", "Offer", "OfferDomain", "OfferKey", "Permit", "PermitDomain",
    "PricingMode", "ProtocolSettings", "ResourceOffer", "ResourceSpec", "SHA256_HEADER", "SIGNATURE_HEADER",
    "SignedOffer", "TERMINAL_STATES", "TIMEOUT_FOR_STATE", "UNSIGNED", "Verdict", "ZERO_ADDRESS", "ZERO_DIGEST",
    "account_from_private_key", "amounts_fit", "cancel_typed_data", "check_input_tree", "cid_to_digest",
    "compile_allowlist", "contract_deal_nonce", "contract_offer_problems", "deal_binding_problems",
    "deal_defaults", "deal_nonce", "deploy_system", "deployment_path", "deployments_dir", "digest_to_cid",
    "inputs_cid", "inputs_upload_message", "is_ape_account", "job_binding_problems", "load_ape_account",
    "load_deployment", "local_account_from_private_key", "lp", "module_allowed", "module_key", "offer_digest",
    "offer_id", "offer_typed_data",
    "parse_address", "parse_fixed_bytes", "parse_state", "passphrase_variable", "permit_typed_data",
    "price_acceptable", "recover_cancel_signer", "recover_inputs_upload_signer", "recover_signer",
    "recover_upload_signer", "resolve_account", "resources_suffice", "save_deployment", "sign_cancel",
    "sign_inputs_upload", "sign_offer", "sign_permit", "sign_signable", "sign_upload", "signer_address",
    "state_name", "timeouts_acceptable", "unpack_inputs", "unsigned_offer", "upload_message", "validate_cid",
    "verify_offer", "verify_wiring",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        value = getattr(importlib.import_module(f"lilypad.protocol.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lilypad.protocol' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
