"""Signing with an ape keyfile account (``--account ALIAS``): a real keyfile in a
temporary ``APE_DATA_FOLDER``, unlocked from ``APE_ACCOUNTS_<alias>_PASSPHRASE``.

ape reads its data folder once per process, so each step runs in a fresh
Python process; the signatures it prints are checked here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from lilypad.protocol.accounts import is_ape_account, sign_signable, signer_address
from lilypad.protocol.auth import recover_cancel_signer, recover_inputs_upload_signer
from lilypad.protocol.signing import OfferDomain, SignedOffer, recover_signer

KEY = "0x" + "5a" * 32
ADDRESS = Account.from_key(KEY).address
ALIAS = "lpcreator"
DOMAIN = OfferDomain(chain_id=31337, verifying_contract="0x" + "c0" * 20)

_SIGN = """
import json, sys
from lilypad.protocol.accounts import load_ape_account
from lilypad.protocol.auth import sign_cancel, sign_inputs_upload
from lilypad.protocol.offers import JobModule, JobOffer
from lilypad.protocol.signing import OfferDomain, sign_offer
from lilypad.exceptions import LilypadError

try:
    account = load_ape_account(sys.argv[1], interactive=False)
except LilypadError as exc:
    print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
    sys.exit(0)
domain = OfferDomain(chain_id=31337, verifying_contract="0x" + "c0" * 20)
offer = JobOffer(job_creator=account.address, solver="0x" + "ab" * 20, mediators=["0x" + "cd" * 20],
                 module=JobModule(ref="cowsay:v0.0.1", repo="builtin:cowsay", commit="0" * 40))
signed = sign_offer(offer, account, domain)
print(json.dumps({"address": account.address, "signed": signed.model_dump(mode="json"),
                  "cancel": sign_cancel("job", "0x" + "11" * 32, account, domain, created_at=1),
                  "inputs": sign_inputs_upload("0x" + "11" * 32, "ab" * 32, account)}))
"""


def _python(code: str, *args: str, env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def ape_home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("ape-data")
    env = {k: v for k, v in os.environ.items() if not k.startswith("APE_ACCOUNTS_")}
    env["APE_DATA_FOLDER"] = str(folder)
    imported = _python(
        "import json, sys\n"
        "from ape_accounts import import_account_from_private_key\n"
        "a = import_account_from_private_key(sys.argv[1], sys.argv[2], sys.argv[3])\n"
        "print(json.dumps({'address': a.address}))\n", ALIAS, "correct horse", KEY, env=env)
    assert imported["address"] == ADDRESS
    assert (folder / "accounts" / f"{ALIAS}.json").is_file()
    return env


def test_a_keyfile_account_signs_offers_cancels_and_uploads(ape_home: dict[str, str]) -> None:
    env = {**ape_home, f"APE_ACCOUNTS_{ALIAS}_PASSPHRASE": "correct horse"}
    out = _python(_SIGN, ALIAS, env=env)
    assert out["address"] == ADDRESS
    signed = SignedOffer.model_validate(out["signed"])
    assert recover_signer(signed, DOMAIN) == ADDRESS
    # The same signature a raw key makes (signing is deterministic).
    from lilypad.protocol.signing import sign_offer

    assert sign_offer(signed.offer, KEY, DOMAIN).signature == signed.signature
    assert recover_cancel_signer("job", "0x" + "11" * 32, 1, out["cancel"]["signature"], DOMAIN) == ADDRESS
    assert recover_inputs_upload_signer("0x" + "11" * 32, "ab" * 32, out["inputs"]) == ADDRESS
    assert KEY[2:] not in json.dumps(out)


@pytest.mark.parametrize(("alias", "passphrase", "needle"), [
    (ALIAS, None, f"set APE_ACCOUNTS_{ALIAS}_PASSPHRASE"),
    (ALIAS, "wrong", "cannot unlock it"),
    ("nobody", "x", "no ape account with this alias"),
])
def test_unusable_aliases_are_clear_errors(ape_home: dict[str, str], alias: str, passphrase: str | None,
                                           needle: str) -> None:
    env = dict(ape_home)
    if passphrase is not None:
        env[f"APE_ACCOUNTS_{alias}_PASSPHRASE"] = passphrase
    out = _python(_SIGN, alias, env=env)
    assert out["error"] == "AccountAliasError" and needle in out["message"], out


def test_raw_keys_and_local_accounts_sign_the_same() -> None:
    message = encode_defunct(text="lilypad")
    local = Account.from_key(KEY)
    assert not is_ape_account(KEY) and not is_ape_account(local)
    assert signer_address(KEY) == signer_address(local) == ADDRESS
    assert sign_signable(KEY, message) == sign_signable(local, message) == bytes(
        Account.sign_message(message, KEY).signature)
