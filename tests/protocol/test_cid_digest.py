"""Result CID text <-> the bytes32 digest the contracts store."""

from __future__ import annotations

import hashlib

import pytest
from multiformats import CID

from lilypad.exceptions import InvalidCIDError
from lilypad.protocol.cid import cid_to_digest, digest_to_cid
from lilypad.results.cid import directory_cid

EMPTY_DIR = "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"
# The empty UnixFS directory is the dag-pb block 0a 02 08 01 (Data{Type: Directory}).
EMPTY_DIR_DIGEST = hashlib.sha256(bytes.fromhex("0a020801")).digest()
# The same empty directory as kubo prints a CIDv0: the bare multihash in base58btc.
EMPTY_DIR_V0 = "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"


def test_empty_directory_digest_is_sha256_of_its_block():
    assert EMPTY_DIR_DIGEST.hex() == "59948439065f29619ef41280cbb932be52c56d99c5966b65e0111239f098bbef"
    assert cid_to_digest(EMPTY_DIR) == EMPTY_DIR_DIGEST
    assert digest_to_cid(EMPTY_DIR_DIGEST) == EMPTY_DIR


def test_digest_matches_the_cidv0_multihash_of_the_same_directory():
    # CIDv0 = the bare multihash 0x12 0x20 <digest> in base58btc: an independent encoding
    assert bytes(CID.decode(EMPTY_DIR_V0).raw_digest) == cid_to_digest(EMPTY_DIR)


@pytest.mark.parametrize("as_hex", [False, True])
def test_round_trip_of_computed_result_directories(tmp_path, as_hex):
    for n in range(5):
        d = tmp_path / f"result{n}"
        (d / "outputs").mkdir(parents=True)
        (d / "stdout").write_bytes(b"out %d\n" % n)
        (d / "stderr").write_bytes(b"")
        (d / "exitCode").write_bytes(b"0")
        cid = directory_cid(d)
        digest = cid_to_digest(cid)
        assert len(digest) == 32
        back = digest_to_cid("0x" + digest.hex() if as_hex else digest)
        assert back == cid


def test_other_multibase_of_the_same_cid_gives_the_same_digest():
    base58 = str(CID.decode(EMPTY_DIR).encode("base58btc"))
    assert base58.startswith("z")
    assert cid_to_digest(base58) == EMPTY_DIR_DIGEST
    assert digest_to_cid(cid_to_digest(base58)) == EMPTY_DIR  # always printed as base32


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (EMPTY_DIR_V0, "version 0"),
        ("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", "codec raw"),  # a file (raw leaf)
        ("not a cid", "not a CID"),
        ("", "not a CID"),
    ],
)
def test_rejects_what_is_not_a_result_directory_cid(text, reason):
    with pytest.raises(InvalidCIDError, match=reason):
        cid_to_digest(text)


def test_rejects_bad_digests():
    with pytest.raises(InvalidCIDError, match="31 bytes"):
        digest_to_cid(b"\x01" * 31)
    with pytest.raises(InvalidCIDError, match="no result"):
        digest_to_cid(b"\x00" * 32)
    with pytest.raises(InvalidCIDError, match="not hex"):
        digest_to_cid("0xzz")
