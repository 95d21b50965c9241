"""Where a transaction's gas goes, from the node's struct-log trace (``debug_traceTransaction``).

:func:`breakdown` sorts every gas unit a transaction paid into what the EVM charged it for:
the intrinsic cost (21,000 and the calldata), storage writes that create a slot (zero to
non-zero, 20,000 + the cold access) and those that update one, storage reads, event logs,
calls to other contracts (their access and memory cost, not the callee's own work, which is
counted by opcode like the caller's; a precompile such as ``ecrecover`` counts whole),
hashing, and everything else (the contracts' own computation: ABI decoding, checks,
memory). Storage refunds (a slot set back to its value at the transaction's start) come off
at the end, as the EVM does. The parts sum to the receipt's ``gasUsed``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

__all__ = ["CATEGORIES", "breakdown"]

#: The parts, in the order a table shows them.
CATEGORIES = ("intrinsic", "new_slots", "slot_updates", "slot_reads", "logs", "calls", "hashing", "execution",
              "refund")

_CALLS = {"CALL", "STATICCALL", "DELEGATECALL", "CALLCODE"}
#: A fresh slot costs at least this (20,000 to set it, plus the cold access when first touched).
_NEW_SLOT_GAS = 20_000


def _intrinsic(data: bytes) -> int:
    return 21_000 + sum(16 if b else 4 for b in data)


def breakdown(w3: Any, tx_hash: str | bytes) -> dict[str, int]:
    """The gas of transaction ``tx_hash`` by :data:`CATEGORIES` (see the module docstring), with
    ``gas_used`` and ``new_slots_n`` / ``slot_updates_n`` / ``calls_n`` (how many of each)."""
    tx = w3.eth.get_transaction(tx_hash)
    receipt = w3.eth.get_transaction_receipt(tx_hash)
    trace = w3.provider.make_request("debug_traceTransaction", [
        tx_hash if isinstance(tx_hash, str) else "0x" + bytes(tx_hash).hex(),
        {"disableStack": True, "disableMemory": True, "disableStorage": True}])
    if "error" in trace:
        raise RuntimeError(f"debug_traceTransaction: {trace['error']}")
    steps = trace["result"]["structLogs"]
    parts: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    for i, step in enumerate(steps):
        op, cost, depth = step["op"], int(step["gasCost"]), int(step["depth"])
        nxt = steps[i + 1] if i + 1 < len(steps) else None
        if op in _CALLS:
            counts["calls_n"] += 1
            if nxt is not None and int(nxt["depth"]) == depth + 1:  # a contract: its work is counted by opcode
                parts["calls"] += cost - int(nxt["gas"])
            elif nxt is not None:  # a precompile (or a call to code-less account): all of it
                parts["calls"] += int(step["gas"]) - int(nxt["gas"])
            continue
        if op == "SSTORE":
            key = "new_slots" if cost >= _NEW_SLOT_GAS else "slot_updates"
            parts[key] += cost
            counts[key + "_n"] += 1
        elif op == "SLOAD":
            parts["slot_reads"] += cost
        elif op.startswith("LOG"):
            parts["logs"] += cost
        elif op in ("KECCAK256", "SHA3"):
            parts["hashing"] += cost
        else:
            parts["execution"] += cost
    parts["intrinsic"] = _intrinsic(bytes(tx["input"]))
    gas_used = int(receipt["gasUsed"])
    # What the opcodes and the intrinsic cost add up to, less gasUsed, is the refund (EIP-3529:
    # at most a fifth of the total). A call's cost as reported includes the gas it forwards, so
    # the callee's steps are not counted twice: only the access part is kept above.
    parts["refund"] = gas_used - sum(parts[c] for c in CATEGORIES if c != "refund")
    out = {c: int(parts[c]) for c in CATEGORIES}
    out.update({k: int(v) for k, v in counts.items()})
    out["gas_used"] = gas_used
    return out
