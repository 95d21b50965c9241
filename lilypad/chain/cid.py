"""Result CIDs as the contracts store them: the bare sha2-256 digest, as bytes32.

A result's data id is the CIDv1 (codec dag-pb, sha2-256 multihash) of the
results directory, printed in multibase base32 (``bafy...``; see
:mod:`lilypad.results.cid`). Every such CID differs only in its 32-byte
digest, so ``LilypadController.addResult`` takes just the digest; these two
functions convert in both directions, losslessly.
"""

from __future__ import annotations

from multiformats import CID, multicodec, multihash

from lilypad.exceptions import InvalidCIDError

__all__ = ["cid_to_digest", "digest_to_cid", "ZERO_DIGEST"]

#: What storage holds for a deal without a result.
ZERO_DIGEST = b"\x00" * 32

_DAG_PB = multicodec.get("dag-pb")
_SHA2_256 = multihash.get("sha2-256")


def cid_to_digest(cid_text: str) -> bytes:
    """The 32-byte sha2-256 digest of a result CID (CIDv1, dag-pb, sha2-256).

    Accepts the CID in any multibase (``bafy...`` is base32). Raises
    :class:`~lilypad.exceptions.InvalidCIDError` for anything else: CIDv0
    (``Qm...``), raw leaves (``bafk...``), other hashes, garbage.
    """
    if not isinstance(cid_text, str):
        raise InvalidCIDError(repr(cid_text), "not a string")
    try:
        cid = CID.decode(cid_text.strip())
    except Exception as exc:  # multiformats raises several error types
        raise InvalidCIDError(cid_text, f"not a CID ({exc})") from None
    if cid.version != 1:
        raise InvalidCIDError(cid_text, f"CID version {cid.version}, expected 1")
    if cid.codec != _DAG_PB:
        raise InvalidCIDError(cid_text, f"codec {cid.codec.name}, expected dag-pb (a directory)")
    if cid.hashfun != _SHA2_256:
        raise InvalidCIDError(cid_text, f"hash {cid.hashfun.name}, expected sha2-256")
    digest = bytes(cid.raw_digest)
    if len(digest) != 32:
        raise InvalidCIDError(cid_text, f"digest of {len(digest)} bytes, expected 32")
    if digest == ZERO_DIGEST:
        raise InvalidCIDError(cid_text, "all-zero digest (the contracts' 'no result')")
    return digest


def digest_to_cid(digest: bytes | str) -> str:
    """The CID text (``bafy...``) of a bytes32 digest read from the contracts.

    ``digest`` is 32 bytes, or their hex (with or without ``0x``). The
    all-zero digest means "no result" and is refused: check for it first.
    """
    raw = _as_bytes(digest)
    if len(raw) != 32:
        raise InvalidCIDError("0x" + raw.hex(), f"digest of {len(raw)} bytes, expected 32")
    if raw == ZERO_DIGEST:
        raise InvalidCIDError("0x" + raw.hex(), "all-zero digest: the deal has no result")
    return str(CID("base32", 1, _DAG_PB, multihash.wrap(raw, _SHA2_256)))


def _as_bytes(value: bytes | str) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        text = value[2:] if value.startswith(("0x", "0X")) else value
        try:
            return bytes.fromhex(text)
        except ValueError:
            raise InvalidCIDError(value, "not hex") from None
    raise InvalidCIDError(repr(value), "not bytes or hex")
