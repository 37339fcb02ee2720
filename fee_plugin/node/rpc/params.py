"""Parsing of JSON-RPC parameters: each parser names the parameter it refuses and why."""
from typing import Any, List

from eth_utils import decode_hex, is_hex, to_canonical_address

from .errors import INVALID_PARAMS, RpcError

MAX_QUANTITY_HEX_DIGITS = 64  # a uint256


def quantity(value: Any, name: str) -> int:
    if (isinstance(value, str) and value.startswith("0x") and 2 < len(value) <= 2 + MAX_QUANTITY_HEX_DIGITS
            and is_hex(value)):
        return int(value, 16)
    raise RpcError(INVALID_PARAMS, f"{name}: expected a 0x-hex quantity, got {_show(value)}")


def data(value: Any, name: str) -> bytes:
    if (isinstance(value, str) and value.startswith("0x") and len(value) % 2 == 0
            and (value == "0x" or is_hex(value))):
        return decode_hex(value)
    raise RpcError(INVALID_PARAMS, f"{name}: expected 0x-hex data, got {_show(value)}")


def address(value: Any, name: str) -> bytes:
    if isinstance(value, str) and len(value) == 42 and value.startswith("0x") and is_hex(value):
        return to_canonical_address(value)
    raise RpcError(INVALID_PARAMS, f"{name}: expected a 20-byte 0x address, got {_show(value)}")


def hash32(value: Any, name: str) -> bytes:
    raw = data(value, name)
    if len(raw) != 32:
        raise RpcError(INVALID_PARAMS, f"{name}: expected a 32-byte hash")
    return raw


def positional(params: Any, minimum: int, maximum: int) -> List[Any]:
    """`params` padded with None to `maximum` entries; refused outside minimum..maximum."""
    params = [] if params is None else params
    if not isinstance(params, list) or not minimum <= len(params) <= maximum:
        raise RpcError(INVALID_PARAMS, f"expected {minimum}..{maximum} positional params")
    return params + [None] * (maximum - len(params))


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
