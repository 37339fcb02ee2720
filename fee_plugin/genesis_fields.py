"""The JSON-reading kit of the genesis loader: field parsers, strict objects, the file.

Split from genesis.py so that module says what a genesis means (its fields, their bounds and
how they combine) and this one how a JSON value is read, the same way for every field: a
parser takes (path, raw value) and returns the value or raises GenesisError naming the path;
objects refuse unknown and duplicate keys; keys are visited sorted, so which error is
reported never depends on dict order. It knows no genesis field (docs/genesis.md, "Rules
that apply everywhere").
"""
import difflib
import json
import re
from typing import Any, Callable, Iterator, List, Mapping, Optional, Tuple, Union

from eth_utils import is_checksum_address, to_checksum_address

UINT256_LIMIT = 2**256
ROOT = "<root>"  # path shown when the document itself is wrong (not a JSON object)


class GenesisError(ValueError):
    """A genesis problem; `path` names the offending field, e.g. config.feePlugin.maxLiveLots."""

    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"{path}: {why}")
        self.path = path
        self.why = why

    def __reduce__(self):  # keep (path, why) through pickling, e.g. across processes
        return (type(self), (self.path, self.why))


# -- field parsers: (path, raw JSON value) -> value, or GenesisError ----------------------

_DECIMAL = re.compile(r"[0-9]+")
_HEX_QUANTITY = re.compile(r"0[xX][0-9a-fA-F]+")
_ADDRESS = re.compile(r"(0[xX])?([0-9a-fA-F]{40})")
_HEX_BYTES = re.compile(r"0[xX]((?:[0-9a-fA-F]{2})*)")
_MAX_DECIMAL_DIGITS = 100  # 2**256 has 78 digits; longer strings are refused before int()


class _HugeJsonInt(str):
    """A JSON integer literal too long for int() (Python caps digit strings): always too big."""


def _parse_json_int(literal: str) -> Union[int, _HugeJsonInt]:
    return int(literal) if len(literal) <= _MAX_DECIMAL_DIGITS else _HugeJsonInt(literal)


def join_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path and path != ROOT else key


def _describe(value: Any) -> str:
    """The JSON spelling of a wrong value, for error messages."""
    if isinstance(value, bool):
        return f"boolean {json.dumps(value)}"
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"number {value!r} (not an integer)"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return repr(value)


def _upper_bound_text(limit: int) -> str:
    """'< 2**40 (1099511627776)' for power-of-two limits, else '<= limit - 1'."""
    bits = limit.bit_length() - 1
    if limit == 1 << bits and bits >= 16:
        return f"< 2**{bits} ({limit})"
    return f"<= {limit - 1}"


def parse_quantity(path: str, value: Any, low: int = 0, limit: int = UINT256_LIMIT) -> int:
    """An integer in [low, limit) from a JSON integer or a decimal / 0x-hex string.

    No floats (inexact), no booleans (they are ints in Python), no signs or whitespace.
    """
    if isinstance(value, _HugeJsonInt):
        raise GenesisError(
            path, f"must be {_upper_bound_text(limit)}, got a {len(value)}-digit number"
        )
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise GenesisError(
            path, f"expected an integer or a decimal/0x-hex string, got {_describe(value)}"
        )
    if isinstance(value, str):
        value = _quantity_string(path, value, limit)
    if value < low:
        bound = "> 0" if low == 1 else f">= {low}"
        raise GenesisError(path, f"must be {bound}, got {value}")
    if value >= limit:
        raise GenesisError(path, f"must be {_upper_bound_text(limit)}, got {value}")
    return value


def _quantity_string(path: str, text: str, limit: int) -> int:
    if _DECIMAL.fullmatch(text):
        if len(text) > _MAX_DECIMAL_DIGITS:
            raise GenesisError(path, f"must be {_upper_bound_text(limit)}, got {len(text)} digits")
        return int(text, 10)
    if _HEX_QUANTITY.fullmatch(text):
        return int(text[2:], 16)
    raise GenesisError(path, f"not a decimal or 0x-hex quantity: {text!r}")


def parse_address(path: str, value: Any, prefix_optional: bool = False) -> bytes:
    """20 bytes from 0x + 40 hex digits; mixed case must be a valid EIP-55 checksum."""
    match = _ADDRESS.fullmatch(value) if isinstance(value, str) else None
    if match is None or (match.group(1) is None and not prefix_optional):
        raise GenesisError(
            path, f"expected a 0x-prefixed 20-byte hex address, got {_describe(value)}"
        )
    body = match.group(2)
    if body != body.lower() and body != body.upper() and not is_checksum_address("0x" + body):
        expected = to_checksum_address("0x" + body.lower())
        raise GenesisError(path, f"bad EIP-55 checksum in {value!r} (checksummed: {expected})")
    return bytes.fromhex(body)


def parse_hex_bytes(path: str, value: Any, max_length: Optional[int] = None) -> bytes:
    match = _HEX_BYTES.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise GenesisError(
            path, f"expected 0x-prefixed hex bytes (even number of digits), got {_describe(value)}"
        )
    data = bytes.fromhex(match.group(1))
    if max_length is not None and len(data) > max_length:
        raise GenesisError(path, f"at most {max_length} bytes, got {len(data)}")
    return data


def parse_choice(path: str, value: Any, choices: Tuple[str, ...]) -> str:
    """One of a few lowercase words, matched case-insensitively."""
    if not isinstance(value, str) or value.lower() not in choices:
        raise GenesisError(path, f"must be one of {', '.join(choices)}; got {_describe(value)}")
    return value.lower()


def parse_object(path: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise GenesisError(path, f"expected a JSON object, got {_describe(value)}")
    for key in value:
        if not isinstance(key, str):
            raise GenesisError(path, f"object keys must be strings, got {key!r}")
    return value


def is_comment(key: str) -> bool:
    """Keys starting with "_" are comments, ignored everywhere (JSON has no comments)."""
    return key.startswith("_")


def object_entries(path: str, value: Any) -> Iterator[Tuple[str, str, Any]]:
    """(path, key, value) for each non-comment entry of a JSON object, sorted by key."""
    obj = parse_object(path, value)
    for key in sorted(obj):
        if not is_comment(key):
            yield join_path(path, key), key, obj[key]


def bounded(low: int, limit: int) -> Callable[[str, Any], int]:
    return lambda path, value: parse_quantity(path, value, low, limit)


def one_of(choices: Tuple[str, ...]) -> Callable[[str, Any], str]:
    return lambda path, value: parse_choice(path, value, choices)


REQUIRED = object()


class Fields:
    """One JSON object with a fixed set of keys; any other (non-comment) key is an error.

    Unknown keys are checked before any value, so a typo is reported as the typo (with a
    suggestion) rather than as the correctly spelled field being missing.
    """

    def __init__(self, path: str, value: Any, known: Tuple[str, ...]) -> None:
        self.path = path
        self.obj = parse_object(path, value)
        for key in sorted(self.obj):
            if key not in known and not is_comment(key):
                close = difflib.get_close_matches(key, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise GenesisError(join_path(path, key), f"unknown field{hint}")

    def get(
        self,
        key: str,
        parse: Callable[[str, Any], Any],
        default: Any = REQUIRED,
        missing: str = "required field is missing",
    ) -> Any:
        """The parsed value of `key`; without it, `default`, or (REQUIRED) the `missing` error."""
        if key not in self.obj:
            if default is REQUIRED:
                raise GenesisError(join_path(self.path, key), missing)
            return default
        return parse(join_path(self.path, key), self.obj[key])


# -- reading a file -----------------------------------------------------------------------


class _JsonObject(dict):
    """A parsed JSON object that remembers keys it saw more than once (json keeps the last)."""

    duplicates: Tuple[str, ...] = ()


def _object_pairs(pairs: List[Tuple[str, Any]]) -> _JsonObject:
    obj = _JsonObject()
    duplicates = []
    for key, value in pairs:
        if key in obj and key not in duplicates:
            duplicates.append(key)
        obj[key] = value
    if duplicates:
        obj.duplicates = tuple(duplicates)
    return obj


def _reject_duplicate_keys(node: Any, path: str) -> None:
    """Any object anywhere with a repeated key is an error: which copy was meant is unknowable."""
    if isinstance(node, dict):
        for key in getattr(node, "duplicates", ()):
            raise GenesisError(join_path(path, key), "duplicate key in a JSON object")
        for key in sorted(node):
            _reject_duplicate_keys(node[key], join_path(path, key))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            _reject_duplicate_keys(item, f"{path}[{index}]")


def read_json(path: str) -> Any:
    """The JSON document in a file; an unreadable file, bad JSON or a duplicate key is refused."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as err:
        raise GenesisError(path, f"cannot read the genesis file: {err.strerror or err}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise GenesisError(path, f"not UTF-8 text (bad byte at offset {err.start})") from None
    try:
        document = json.loads(text, object_pairs_hook=_object_pairs, parse_int=_parse_json_int)
    except json.JSONDecodeError as err:
        raise GenesisError(
            path, f"invalid JSON at line {err.lineno} column {err.colno}: {err.msg}"
        ) from None
    except RecursionError:
        raise GenesisError(path, "invalid JSON: nested too deeply") from None
    _reject_duplicate_keys(document, ROOT)
    return document
