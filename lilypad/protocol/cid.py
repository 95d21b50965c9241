"""The CIDs the roles exchange: their text form and the bytes32 the contracts store.

A result's data id - and a job's input files' ``inputs_cid`` - is the CIDv1
(codec dag-pb, sha2-256 multihash) of a directory, printed in multibase
base32 (``bafy...``; computed by :mod:`lilypad.results.cid`).

* :func:`validate_cid` accepts only that text form (canonical base32, so a
  CID can be used as a file name without any path traversal): job offers,
  the solver's stores and the archives check CIDs with it;
* every such CID differs only in its 32-byte digest, so
  ``LilypadController.addResult`` takes just the digest:
  :func:`cid_to_digest` and :func:`digest_to_cid` convert in both
  directions, losslessly.
"""

from __future__ import annotations

import re

from multiformats import CID, multicodec, multihash

from lilypad.exceptions import InvalidCIDError

__all__ = ["ZERO_DIGEST", "cid_to_digest", "digest_to_cid", "validate_cid"]

#: What storage holds for a deal without a result.
ZERO_DIGEST = b"\x00" * 32

_DAG_PB = multicodec.get("dag-pb")
_SHA2_256 = multihash.get("sha2-256")
_CID_RE = re.compile(r"b[a-z2-7]{58}")  # base32 of a 36-byte CIDv1 dag-pb sha2-256


def _directory_cid(text: str, shown: str) -> CID:
    """``text`` decoded, if it is a CIDv1 with codec dag-pb and a sha2-256
    multihash (a directory's CID, in any multibase); else
    :class:`~lilypad.exceptions.InvalidCIDError` naming ``shown``."""
    try:
        cid = CID.decode(text)
    except Exception as exc:  # multiformats raises several error types
        raise InvalidCIDError(shown, f"not a CID ({exc})") from None
    if cid.version != 1:
        raise InvalidCIDError(shown, f"CID version {cid.version}, expected 1")
    if cid.codec != _DAG_PB:
        raise InvalidCIDError(shown, f"codec {cid.codec.name}, expected dag-pb (a directory)")
    if cid.hashfun != _SHA2_256:
        raise InvalidCIDError(shown, f"hash {cid.hashfun.name}, expected sha2-256")
    return cid


def validate_cid(text: str) -> str:
    """``text`` if it is the CID text of a result directory, else raise.

    A result's CID is a CIDv1 with codec dag-pb and a sha2-256 multihash,
    printed in multibase base32 (``bafy...``, 59 characters), exactly as
    :func:`~lilypad.results.cid.directory_cid` prints it. Only lower-case
    letters and the digits 2-7 can pass, so the text is always a safe single
    file name. Raises :class:`~lilypad.exceptions.InvalidCIDError`.
    """
    if not isinstance(text, str):
        raise InvalidCIDError(repr(text), "not a string")
    if not _CID_RE.fullmatch(text):
        raise InvalidCIDError(
            text, "expected a CIDv1 in base32: 'b' and 58 characters of a-z and 2-7"
        )
    cid = _directory_cid(text, text)
    if str(cid.encode("base32")) != text:
        raise InvalidCIDError(text, "not in canonical form")
    return text


def cid_to_digest(cid_text: str) -> bytes:
    """The 32-byte sha2-256 digest of a result CID (CIDv1, dag-pb, sha2-256).

    Accepts the CID in any multibase (``bafy...`` is base32). Raises
    :class:`~lilypad.exceptions.InvalidCIDError` for anything else: CIDv0
    (``Qm...``), raw leaves (``bafk...``), other hashes, garbage.
    """
    if not isinstance(cid_text, str):
        raise InvalidCIDError(repr(cid_text), "not a string")
    cid = _directory_cid(cid_text.strip(), cid_text)
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
