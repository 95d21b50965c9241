"""Pydantic field types the protocol's models share.

* :data:`Address` - a checksummed, non-zero address (an ape account is taken
  by its ``.address``): the parties and solver of an offer;
* :data:`HexBytes32` - 32 bytes, ``bytes`` in Python (so ABI encoding and
  hashing see raw bytes) and ``0x``-hex in JSON (validated from either): the
  nonces of offers and deals.
"""

from __future__ import annotations

from typing import Annotated, Any

from eth_utils import is_address, to_checksum_address
from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

__all__ = ["Address", "HexBytes32", "ZERO_ADDRESS", "parse_address", "parse_fixed_bytes"]

#: The zero address (never a party to a deal).
ZERO_ADDRESS = "0x" + "00" * 20


def parse_address(value: Any) -> str:
    """``value`` (or its ``.address``) checksummed; ``ValueError`` for
    anything but a non-zero address."""
    value = getattr(value, "address", value)
    if not isinstance(value, str) or not is_address(value):
        raise ValueError(f"{value!r} is not an address (0x and 40 hex digits)")
    checksummed = to_checksum_address(value)
    if checksummed == to_checksum_address(ZERO_ADDRESS):
        raise ValueError("the zero address cannot take part in a deal")
    return checksummed


def parse_fixed_bytes(value: Any, size: int, *, hex_error: str, size_error: str) -> bytes:
    """``value`` as exactly ``size`` bytes: bytes as they are, a string as hex
    (``0x`` optional); ``ValueError(hex_error)`` for a string that is not hex,
    ``ValueError(size_error)`` for anything else of the wrong kind or size."""
    if isinstance(value, str):
        text = value[2:] if value.startswith(("0x", "0X")) else value
        try:
            value = bytes.fromhex(text)
        except ValueError:
            raise ValueError(hex_error) from None
    if not isinstance(value, (bytes, bytearray)) or len(value) != size:
        raise ValueError(size_error)
    return bytes(value)


def _bytes32(value: Any) -> bytes:
    return parse_fixed_bytes(value, 32, hex_error="expected 32 bytes as hex", size_error="expected exactly 32 bytes")


#: A checksummed, non-zero address (an ape account is taken by its ``.address``).
Address = Annotated[str, BeforeValidator(parse_address)]
#: 32 bytes; ``0x``-hex in JSON.
HexBytes32 = Annotated[
    bytes, BeforeValidator(_bytes32), PlainSerializer(lambda b: "0x" + b.hex(), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": "^0x[0-9a-fA-F]{64}$", "description": "32 bytes, 0x-hex"}),
]
