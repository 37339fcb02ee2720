"""Genesis file: parse and validate a geth-style JSON file into a frozen config.

A malformed genesis must never start a node: a typo that silently fell back to a default
would fork the chain or mis-price every transaction. So every problem raises GenesisError
naming the JSON path of the offending field, unknown keys are errors, and iteration over
JSON objects is sorted, so which error is reported (and every encoding) never depends on
dict order. Integers only: quantities are wei, seconds and counts. Reference:
docs/genesis.md; storage layout of the vault predeploy: contracts/LAYOUT.md.
"""
import difflib
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

# The only py-evm imports: the addresses Cancun/Prague reserve for system contracts.
from eth.constants import SYSTEM_ADDRESS
from eth.vm.forks.cancun.constants import BEACON_ROOTS_ADDRESS
from eth.vm.forks.prague.constants import (
    CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS,
    DEPOSIT_CONTRACT_ADDRESS,
    HISTORY_STORAGE_ADDRESS,
    WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS,
)
from eth_utils import is_checksum_address, keccak, to_checksum_address

from .layout import (
    AMOUNT_LIMIT,
    LOTS_CAPACITY,
    SLOT_CONSUMPTION_MODE,
    SLOT_INITIAL_RELEASE_BPS,
    SLOT_LOT_VALIDITY,
    SLOT_LOW_BALANCE,
    SLOT_MAX_LIVE_LOTS,
    SLOT_MIN_DEPOSIT,
    SLOT_OPERATOR,
    SLOT_TREASURY,
    TIME_LIMIT,
    TOTAL_LIMIT,
)
from .lots import BPS_DENOMINATOR, Consumption, ReleasePolicy

UINT256_LIMIT = 2**256
UINT64_LIMIT = 2**64
MIN_GAS_LIMIT = 21_000  # one plain transfer must fit in a block
GAS_LIMIT_LIMIT = 2**63  # py-evm/geth keep gas in a signed 64-bit range
MAX_EXTRA_DATA_BYTES = 32  # header validation rejects longer extra data
ZERO_ADDRESS = b"\x00" * 20

FORKS = ("cancun", "prague")
HEADER_RULES = ("fixed", "ethereum")
NO_ACCOUNT_RULES = ("reject", "native")
CONSUMPTION_MODES = {"uniform": Consumption.UNIFORM, "upfront": Consumption.UPFRONT}

# Addresses the vault must not take, with the reason shown in the error: the vault's code
# would shadow a precompile, or a system call would execute (or overwrite) the vault.
RESERVED_ADDRESSES: Mapping[bytes, str] = {
    ZERO_ADDRESS: "the zero address",
    **{i.to_bytes(20, "big"): f"precompile 0x{i:02x}" for i in range(0x01, 0x12)},
    bytes(BEACON_ROOTS_ADDRESS): "the EIP-4788 beacon roots system contract",
    bytes(HISTORY_STORAGE_ADDRESS): "the EIP-2935 block hash history system contract",
    bytes(WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS): "the EIP-7002 withdrawal request system contract",
    bytes(CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS): (
        "the EIP-7251 consolidation request system contract"
    ),
    bytes(DEPOSIT_CONTRACT_ADDRESS): "the EIP-6110 deposit contract",
    bytes(SYSTEM_ADDRESS): "the system-call sender address",
}
assert all(len(address) == 20 for address in RESERVED_ADDRESSES)

ROOT = "<root>"  # path shown when the document itself is wrong (not a JSON object)
SOURCE_HASH_FORMAT = "fee_plugin.genesis/1"  # bump if the canonical encoding changes


class GenesisError(ValueError):
    """A genesis problem; `path` names the offending field, e.g. config.feePlugin.maxLiveLots."""

    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"{path}: {why}")
        self.path = path
        self.why = why

    def __reduce__(self):  # keep (path, why) through pickling, e.g. across processes
        return (type(self), (self.path, self.why))


# -- the frozen result -----------------------------------------------------------------


@dataclass(frozen=True)
class FeeConfig:
    """config.feePlugin: the vault's genesis constants (also written to its storage)."""

    vault: bytes
    operator: bytes
    treasury: bytes
    lot_validity_seconds: int
    consumption: Consumption
    initial_release_bps: int
    min_deposit_wei: int
    max_live_lots: int
    low_balance_wei: int
    no_account: str  # "reject" | "native"

    @property
    def release_policy(self) -> ReleasePolicy:
        return ReleasePolicy(self.consumption, self.initial_release_bps)


@dataclass(frozen=True)
class AllocAccount:
    balance: int
    nonce: int
    code: bytes
    storage: Tuple[Tuple[int, int], ...]  # (slot, value), sorted by slot, zero values omitted


@dataclass(frozen=True)
class Genesis:
    chain_id: int
    fork: str  # "cancun" | "prague"
    header_rules: str  # "fixed" | "ethereum"
    timestamp: int
    gas_limit: int
    base_fee_per_gas: int
    coinbase: bytes
    extra_data: bytes
    alloc: Tuple[Tuple[bytes, AllocAccount], ...]  # sorted by address
    fee: FeeConfig
    # keccak of the canonical encoding of every field above: the same for any JSON spelling
    # of the same genesis (hex or decimal, key order, comments), different if anything differs.
    source_hash: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "source_hash", keccak(canonical_encoding(self)))

    def __hash__(self) -> int:
        # Consistent with ==: equal fields give equal source hashes. Cheap for big allocs,
        # which matters because VM classes are cached per Genesis.
        return hash(self.source_hash)

    def genesis_params(self) -> Dict[str, Any]:
        """Header fields for MiningChain.from_genesis (post-merge: no difficulty, no PoW nonce)."""
        return {
            "timestamp": self.timestamp,
            "gas_limit": self.gas_limit,
            "base_fee_per_gas": self.base_fee_per_gas,
            "coinbase": self.coinbase,
            "extra_data": self.extra_data,
            "difficulty": 0,
            "nonce": b"\x00" * 8,
            "mix_hash": b"\x00" * 32,
        }

    def genesis_state(self) -> Dict[bytes, Dict[str, Any]]:
        """The alloc plus the vault predeploy, in py-evm's from_genesis form.

        Every entry has all four keys (py-evm requires them); fresh dicts on every call, so
        a caller may modify the result.
        """
        state = {
            address: {
                "balance": account.balance,
                "nonce": account.nonce,
                "code": account.code,
                "storage": dict(account.storage),
            }
            for address, account in self.alloc
        }
        state[self.fee.vault] = {
            "balance": 0,
            "nonce": 1,  # a contract account is never "empty" (EIP-161)
            "code": vault_runtime_code(),
            "storage": vault_storage(self.fee),
        }
        return state


def vault_runtime_code() -> bytes:
    """The committed FeeVault runtime code, read from package data on first use.

    Lazy, so parsing a genesis needs no artifact; an empty code would predeploy a vault that
    silently accepts every call, so it is refused.
    """
    from .artifact import ARTIFACT_NAME, vault_runtime_code as artifact_code

    code = artifact_code()
    if not code:
        raise RuntimeError(
            f"fee_plugin/artifacts/{ARTIFACT_NAME} has no runtime bytecode; rebuild it"
        )
    return code


def vault_storage(fee: FeeConfig) -> Dict[int, int]:
    """The vault's initial storage words (contracts/LAYOUT.md); zero words are absent.

    Omitting zeros matches trie semantics (a zero word is no entry), so the state root is
    the same as if the contract had stored these values itself.
    """
    words = {
        SLOT_OPERATOR: int.from_bytes(fee.operator, "big"),
        SLOT_TREASURY: int.from_bytes(fee.treasury, "big"),
        SLOT_LOT_VALIDITY: fee.lot_validity_seconds,
        SLOT_MIN_DEPOSIT: fee.min_deposit_wei,
        SLOT_MAX_LIVE_LOTS: fee.max_live_lots,
        SLOT_LOW_BALANCE: fee.low_balance_wei,
        SLOT_CONSUMPTION_MODE: int(fee.consumption),
        SLOT_INITIAL_RELEASE_BPS: fee.initial_release_bps,
    }
    return {slot: value for slot, value in sorted(words.items()) if value}


def canonical_encoding(genesis: Genesis) -> bytes:
    """A deterministic byte encoding of every Genesis field (the source_hash preimage).

    Compact JSON with sorted keys, integers as JSON integers, bytes as lowercase 0x-hex and
    alloc/storage sorted: independent of Python's repr, dict order and the input spelling.
    """
    fee = genesis.fee
    document = {
        "format": SOURCE_HASH_FORMAT,
        "chainId": genesis.chain_id,
        "fork": genesis.fork,
        "headerRules": genesis.header_rules,
        "timestamp": genesis.timestamp,
        "gasLimit": genesis.gas_limit,
        "baseFeePerGas": genesis.base_fee_per_gas,
        "coinbase": _hex(genesis.coinbase),
        "extraData": _hex(genesis.extra_data),
        "alloc": [
            [_hex(address), a.balance, a.nonce, _hex(a.code), [list(w) for w in sorted(a.storage)]]
            for address, a in sorted(genesis.alloc, key=lambda item: item[0])
        ],
        "feePlugin": {
            "vault": _hex(fee.vault),
            "operator": _hex(fee.operator),
            "treasury": _hex(fee.treasury),
            "lotValiditySeconds": fee.lot_validity_seconds,
            "consumption": int(fee.consumption),
            "initialReleaseBps": fee.initial_release_bps,
            "minDeposit": fee.min_deposit_wei,
            "maxLiveLots": fee.max_live_lots,
            "lowBalance": fee.low_balance_wei,
            "noAccount": fee.no_account,
        },
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("ascii")


def _hex(data: bytes) -> str:
    return "0x" + bytes(data).hex()


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


def _join(path: str, key: str) -> str:
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


def _quantity(path: str, value: Any, low: int = 0, limit: int = UINT256_LIMIT) -> int:
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


def _address(path: str, value: Any, prefix_optional: bool = False) -> bytes:
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


def _hex_bytes(path: str, value: Any, max_length: Optional[int] = None) -> bytes:
    match = _HEX_BYTES.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise GenesisError(
            path, f"expected 0x-prefixed hex bytes (even number of digits), got {_describe(value)}"
        )
    data = bytes.fromhex(match.group(1))
    if max_length is not None and len(data) > max_length:
        raise GenesisError(path, f"at most {max_length} bytes, got {len(data)}")
    return data


def _choice(path: str, value: Any, choices: Tuple[str, ...]) -> str:
    """One of a few lowercase words, matched case-insensitively."""
    if not isinstance(value, str) or value.lower() not in choices:
        raise GenesisError(path, f"must be one of {', '.join(choices)}; got {_describe(value)}")
    return value.lower()


def _object(path: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise GenesisError(path, f"expected a JSON object, got {_describe(value)}")
    for key in value:
        if not isinstance(key, str):
            raise GenesisError(path, f"object keys must be strings, got {key!r}")
    return value


def _is_comment(key: str) -> bool:
    """Keys starting with "_" are comments, ignored everywhere (JSON has no comments)."""
    return key.startswith("_")


def _bounded(low: int, limit: int) -> Callable[[str, Any], int]:
    return lambda path, value: _quantity(path, value, low, limit)


def _one_of(choices: Tuple[str, ...]) -> Callable[[str, Any], str]:
    return lambda path, value: _choice(path, value, choices)


_REQUIRED = object()


class _Fields:
    """One JSON object with a fixed set of keys; any other (non-comment) key is an error.

    Unknown keys are checked before any value, so a typo is reported as the typo (with a
    suggestion) rather than as the correctly spelled field being missing.
    """

    def __init__(self, path: str, value: Any, known: Tuple[str, ...]) -> None:
        self.path = path
        self.obj = _object(path, value)
        for key in sorted(self.obj):
            if key not in known and not _is_comment(key):
                close = difflib.get_close_matches(key, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise GenesisError(_join(path, key), f"unknown field{hint}")

    def get(self, key: str, parse: Callable[[str, Any], Any], default: Any = _REQUIRED) -> Any:
        if key not in self.obj:
            if default is _REQUIRED:
                raise GenesisError(_join(self.path, key), "required field is missing")
            return default
        return parse(_join(self.path, key), self.obj[key])


# -- sections -----------------------------------------------------------------------------

_FEE_KEYS = (
    "vault", "operator", "treasury", "lotValiditySeconds", "consumption",
    "initialReleaseBps", "minDeposit", "maxLiveLots", "lowBalance", "noAccount",
)
_CONFIG_KEYS = ("chainId", "fork", "headerRules", "feePlugin")
_TOP_KEYS = ("config", "timestamp", "gasLimit", "baseFeePerGas", "coinbase", "extraData", "alloc")
_ACCOUNT_KEYS = ("balance", "nonce", "code", "storage")


def _fee_config(path: str, value: Any) -> FeeConfig:
    f = _Fields(path, value, _FEE_KEYS)
    fee = FeeConfig(
        vault=f.get("vault", _address),
        operator=f.get("operator", _address),
        treasury=f.get("treasury", _address),
        lot_validity_seconds=f.get("lotValiditySeconds", _bounded(1, TIME_LIMIT)),
        consumption=CONSUMPTION_MODES[
            f.get("consumption", _one_of(tuple(CONSUMPTION_MODES)), "uniform")
        ],
        initial_release_bps=f.get("initialReleaseBps", _bounded(0, BPS_DENOMINATOR + 1), 0),
        min_deposit_wei=f.get("minDeposit", _bounded(1, AMOUNT_LIMIT)),
        max_live_lots=f.get("maxLiveLots", _bounded(1, LOTS_CAPACITY + 1)),
        low_balance_wei=f.get("lowBalance", _bounded(0, TOTAL_LIMIT), 0),
        no_account=f.get("noAccount", _one_of(NO_ACCOUNT_RULES), "reject"),
    )
    _check_roles(path, fee)
    return fee


def _check_roles(path: str, fee: FeeConfig) -> None:
    """Vault, operator and treasury are three different addresses; the vault is not reserved."""
    roles = (("vault", fee.vault), ("operator", fee.operator), ("treasury", fee.treasury))
    for i, (name, address) in enumerate(roles):
        for other, other_address in roles[:i]:
            if address == other_address:
                raise GenesisError(_join(path, name), f"must differ from {other}")
    if fee.vault in RESERVED_ADDRESSES:
        raise GenesisError(
            _join(path, "vault"), f"is reserved: {RESERVED_ADDRESSES[fee.vault]}"
        )


def _storage(path: str, value: Any) -> Tuple[Tuple[int, int], ...]:
    """slot -> value, both quantities; spellings of one slot collide; zero values dropped."""
    raw = _object(path, value)
    words: Dict[int, int] = {}
    for key in sorted(raw):
        if _is_comment(key):
            continue
        key_path = _join(path, key)
        slot = _quantity(key_path, key)
        if slot in words:
            raise GenesisError(key_path, f"duplicate storage slot {slot:#x} (spelled twice)")
        words[slot] = _quantity(key_path, raw[key])
    return tuple((slot, word) for slot, word in sorted(words.items()) if word)


def _alloc_account(path: str, value: Any) -> AllocAccount:
    f = _Fields(path, value, _ACCOUNT_KEYS)
    return AllocAccount(
        balance=f.get("balance", _quantity),
        nonce=f.get("nonce", _bounded(0, UINT64_LIMIT), 0),
        code=f.get("code", _hex_bytes, b""),
        storage=f.get("storage", _storage, ()),
    )


def _alloc(path: str, value: Any, vault: bytes) -> Tuple[Tuple[bytes, AllocAccount], ...]:
    """Accounts sorted by address. Keys may omit 0x (as geth allows); one address spelled
    twice (case) is an error, and so is the vault address (the loader predeploys it)."""
    raw = _object(path, value)
    accounts: Dict[bytes, AllocAccount] = {}
    for key in sorted(raw):
        if _is_comment(key):
            continue
        key_path = _join(path, key)
        address = _address(key_path, key, prefix_optional=True)
        if address in accounts:
            raise GenesisError(key_path, "duplicate address (the same address spelled twice)")
        if address == vault:
            raise GenesisError(
                key_path,
                "collides with config.feePlugin.vault (the vault is predeployed; "
                "remove it from alloc)",
            )
        accounts[address] = _alloc_account(key_path, raw[key])
    return tuple(sorted(accounts.items()))


def parse_genesis(raw: Any) -> Genesis:
    """Validate an already-parsed genesis JSON document (see docs/genesis.md)."""
    top = _Fields(ROOT, raw, _TOP_KEYS)
    config = _Fields("config", top.get("config", _object), _CONFIG_KEYS)
    chain_id = config.get("chainId", _bounded(1, UINT64_LIMIT))
    fork = config.get("fork", _one_of(FORKS))
    header_rules = config.get("headerRules", _one_of(HEADER_RULES), "fixed")
    fee = config.get("feePlugin", _fee_config)
    timestamp = top.get("timestamp", _bounded(0, TIME_LIMIT))
    if timestamp + fee.lot_validity_seconds >= TIME_LIMIT:
        raise GenesisError(
            "config.feePlugin.lotValiditySeconds",
            f"timestamp + lotValiditySeconds must be < 2**40 (lot expiries are 40-bit), "
            f"got {timestamp} + {fee.lot_validity_seconds}",
        )
    return Genesis(
        chain_id=chain_id,
        fork=fork,
        header_rules=header_rules,
        timestamp=timestamp,
        gas_limit=top.get("gasLimit", _bounded(MIN_GAS_LIMIT, GAS_LIMIT_LIMIT)),
        # A zero base fee would make every transaction free (costless execution is free).
        base_fee_per_gas=top.get("baseFeePerGas", _bounded(1, UINT256_LIMIT)),
        coinbase=top.get("coinbase", _address, ZERO_ADDRESS),
        extra_data=top.get("extraData", lambda p, v: _hex_bytes(p, v, MAX_EXTRA_DATA_BYTES), b""),
        alloc=top.get("alloc", lambda p, v: _alloc(p, v, fee.vault)),
        fee=fee,
    )


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
            raise GenesisError(_join(path, key), "duplicate key in a JSON object")
        for key in sorted(node):
            _reject_duplicate_keys(node[key], _join(path, key))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            _reject_duplicate_keys(item, f"{path}[{index}]")


def _read_json(path: str) -> Any:
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
        return json.loads(text, object_pairs_hook=_object_pairs, parse_int=_parse_json_int)
    except json.JSONDecodeError as err:
        raise GenesisError(
            path, f"invalid JSON at line {err.lineno} column {err.colno}: {err.msg}"
        ) from None
    except RecursionError:
        raise GenesisError(path, "invalid JSON: nested too deeply") from None


def load_genesis(source: Union[str, "os.PathLike[str]", Mapping[str, Any]]) -> Genesis:
    """Validate a genesis: a path to a JSON file, or an already-parsed JSON object (dict)."""
    if isinstance(source, Mapping):
        return parse_genesis(source)
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"load_genesis takes a path or a dict, not {type(source).__name__}")
    path = os.fspath(source)
    raw = _read_json(path)
    _reject_duplicate_keys(raw, ROOT)
    return parse_genesis(raw)
