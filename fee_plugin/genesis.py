"""Genesis file: parse and validate a geth-style JSON file into a frozen config.

A malformed genesis must never start a node, so every problem raises GenesisError naming
the field path. Iteration over JSON objects is sorted, so nothing depends on dict order.
"""
import json
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, Union

from eth_utils import is_checksum_address, keccak, to_canonical_address, to_checksum_address

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
FORKS = ("cancun", "prague")
HEADER_RULES = ("fixed", "ethereum")
NO_ACCOUNT_RULES = ("reject", "native")
CONSUMPTION_MODES = {"uniform": Consumption.UNIFORM, "upfront": Consumption.UPFRONT}
# Addresses the vault must not take: precompiles (0x01..0x11) and the Cancun/Prague system
# contracts (EIP-4788 beacon roots, EIP-2935 history, EIP-7002/7251 request queues, deposits).
RESERVED_ADDRESSES = frozenset(
    [b"\x00" * 20]
    + [i.to_bytes(20, "big") for i in range(1, 0x12)]
    + [
        to_canonical_address(a)
        for a in (
            "0x000F3df6D732807Ef1319fB7B8bB8522d0Beac02",
            "0x0000F90827F1C53a10cb7A02335B175320002935",
            "0x00000961Ef480Eb55e80D19ad83579A64c007002",
            "0x0000BBdDc7CE488642fb579F8B00f3a590007251",
            "0x00000000219ab540356cBB839Cbe05303d7705Fa",
        )
    ]
)


class GenesisError(ValueError):
    """A genesis problem, with the JSON path of the offending field."""

    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"{path}: {why}")
        self.path = path
        self.why = why


@dataclass(frozen=True)
class FeeConfig:
    vault: bytes
    operator: bytes
    treasury: bytes
    lot_validity_seconds: int
    consumption: Consumption
    initial_release_bps: int
    min_deposit_wei: int
    max_live_lots: int
    low_balance_wei: int
    no_account: str

    @property
    def release_policy(self) -> ReleasePolicy:
        return ReleasePolicy(self.consumption, self.initial_release_bps)


@dataclass(frozen=True)
class AllocAccount:
    balance: int
    nonce: int
    code: bytes
    storage: Tuple[Tuple[int, int], ...]  # sorted by slot, zero values omitted


@dataclass(frozen=True)
class Genesis:
    chain_id: int
    fork: str
    header_rules: str
    timestamp: int
    gas_limit: int
    base_fee_per_gas: int
    coinbase: bytes
    extra_data: bytes
    alloc: Tuple[Tuple[bytes, AllocAccount], ...]  # sorted by address
    fee: FeeConfig

    @property
    def source_hash(self) -> bytes:
        """keccak of a canonical encoding: identifies the genesis independent of JSON form."""
        return keccak(repr(self).encode())

    def genesis_params(self) -> Dict[str, Any]:
        """Header fields for MiningChain.from_genesis (post-merge: difficulty and nonce 0)."""
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
        """The alloc plus the vault predeploy (runtime code and config storage)."""
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
            "nonce": 1,
            "code": _vault_code(),
            "storage": vault_storage(self.fee),
        }
        return state


def _vault_code() -> bytes:
    from .artifact import vault_runtime_code  # package data, read on first use

    return vault_runtime_code()


def vault_storage(fee: FeeConfig) -> Dict[int, int]:
    """The vault's initial storage (contracts/LAYOUT.md); zero words are absent."""
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


# -- field parsers ------------------------------------------------------------------

_DECIMAL = re.compile(r"[0-9]+\Z")
_HEX = re.compile(r"0[xX][0-9a-fA-F]+\Z")
_ADDRESS = re.compile(r"0[xX][0-9a-fA-F]{40}\Z")
_HEX_BYTES = re.compile(r"0[xX]([0-9a-fA-F]{2})*\Z")


def _quantity(path: str, value: Any, low: int = 0, limit: int = UINT256_LIMIT) -> int:
    """A non-negative integer from a JSON integer or a decimal / 0x-hex string."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise GenesisError(path, f"expected an integer or a decimal/0x-hex string, got {value!r}")
    if isinstance(value, str):
        if _DECIMAL.match(value):
            value = int(value, 10)
        elif _HEX.match(value):
            value = int(value, 16)
        else:
            raise GenesisError(path, f"not a decimal or 0x-hex quantity: {value!r}")
    if not low <= value < limit:
        raise GenesisError(path, f"must be >= {low} and < {limit}, got {value}")
    return value


def _address(path: str, value: Any) -> bytes:
    if not isinstance(value, str) or not _ADDRESS.match(value):
        raise GenesisError(path, f"expected a 0x-prefixed 20-byte hex address, got {value!r}")
    body = value[2:]
    if body != body.lower() and body != body.upper() and not is_checksum_address(value):
        raise GenesisError(path, f"bad EIP-55 checksum in {value!r}")
    return to_canonical_address(value)


def _hex_bytes(path: str, value: Any, max_length: Optional[int] = None) -> bytes:
    if not isinstance(value, str) or not _HEX_BYTES.match(value):
        raise GenesisError(path, f"expected 0x-prefixed hex bytes, got {value!r}")
    data = bytes.fromhex(value[2:])
    if max_length is not None and len(data) > max_length:
        raise GenesisError(path, f"at most {max_length} bytes, got {len(data)}")
    return data


def _choice(path: str, value: Any, choices) -> str:
    if not isinstance(value, str) or value.lower() not in choices:
        raise GenesisError(path, f"must be one of {', '.join(choices)}; got {value!r}")
    return value.lower()


def _object(path: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise GenesisError(path, f"expected a JSON object, got {type(value).__name__}")
    return value


class _Fields:
    """Reads the keys of one JSON object; unknown keys are errors (typos must not pass)."""

    def __init__(self, path: str, value: Any) -> None:
        self.obj = _object(path, value)
        self.path = path
        self.seen = set()

    def child(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str, parse: Callable[[str, Any], Any], default: Any = None, required: bool = True) -> Any:
        self.seen.add(key)
        if key not in self.obj:
            if required:
                raise GenesisError(self.child(key), "required field is missing")
            return default
        return parse(self.child(key), self.obj[key])

    def done(self) -> None:
        """Keys starting with "_" are comments; anything else unread is a mistake."""
        for key in sorted(self.obj):
            if key not in self.seen and not key.startswith("_"):
                raise GenesisError(self.child(key), "unknown field")


# -- sections -------------------------------------------------------------------------


def _fee_config(path: str, value: Any, timestamp: int) -> FeeConfig:
    f = _Fields(path, value)
    vault = f.get("vault", _address)
    operator = f.get("operator", _address)
    treasury = f.get("treasury", _address)
    validity = f.get("lotValiditySeconds", lambda p, v: _quantity(p, v, 1, TIME_LIMIT))
    if timestamp + validity >= TIME_LIMIT:
        raise GenesisError(
            f.child("lotValiditySeconds"),
            f"genesis timestamp + validity must be < 2**40, got {timestamp + validity}",
        )
    mode = f.get("consumption", lambda p, v: _choice(p, v, tuple(CONSUMPTION_MODES)), "uniform", False)
    fee = FeeConfig(
        vault=vault,
        operator=operator,
        treasury=treasury,
        lot_validity_seconds=validity,
        consumption=CONSUMPTION_MODES[mode],
        initial_release_bps=f.get(
            "initialReleaseBps", lambda p, v: _quantity(p, v, 0, BPS_DENOMINATOR + 1), 0, False
        ),
        min_deposit_wei=f.get("minDeposit", lambda p, v: _quantity(p, v, 1, AMOUNT_LIMIT)),
        max_live_lots=f.get("maxLiveLots", lambda p, v: _quantity(p, v, 1, LOTS_CAPACITY + 1)),
        low_balance_wei=f.get("lowBalance", lambda p, v: _quantity(p, v, 0, TOTAL_LIMIT), 0, False),
        no_account=f.get("noAccount", lambda p, v: _choice(p, v, NO_ACCOUNT_RULES), "reject", False),
    )
    f.done()
    roles = (("vault", vault), ("operator", operator), ("treasury", treasury))
    for i, (name, addr) in enumerate(roles):
        for other, other_addr in roles[:i]:
            if addr == other_addr:
                raise GenesisError(f.child(name), f"must differ from {other}")
    if vault in RESERVED_ADDRESSES:
        raise GenesisError(f.child("vault"), "is a precompile, system contract or zero address")
    return fee


def _alloc_account(path: str, value: Any) -> AllocAccount:
    f = _Fields(path, value)
    balance = f.get("balance", _quantity)
    nonce = f.get("nonce", lambda p, v: _quantity(p, v, 0, 2**64), 0, False)
    code = f.get("code", _hex_bytes, b"", False)
    storage_raw = f.get("storage", _object, {}, False)
    f.done()
    storage = {}
    for key in sorted(storage_raw):
        slot = _quantity(f"{path}.storage.{key}", key)
        if slot in storage:
            raise GenesisError(f"{path}.storage.{key}", "duplicate storage slot")
        storage[slot] = _quantity(f"{path}.storage.{key}", storage_raw[key])
    return AllocAccount(
        balance, nonce, code, tuple((s, v) for s, v in sorted(storage.items()) if v)
    )


def _alloc(path: str, value: Any) -> Tuple[Tuple[bytes, AllocAccount], ...]:
    raw = _object(path, value)
    accounts: Dict[bytes, AllocAccount] = {}
    for key in sorted(raw):
        if key.startswith("_"):
            continue
        spelled = key if key[:2].lower() == "0x" else "0x" + key
        address = _address(f"{path}.{key}", spelled)
        if address in accounts:
            raise GenesisError(f"{path}.{key}", "duplicate address (differs only in case)")
        accounts[address] = _alloc_account(f"{path}.{key}", raw[key])
    return tuple(sorted(accounts.items()))


def parse_genesis(raw: Any) -> Genesis:
    top = _Fields("", raw)
    config = _Fields("config", top.get("config", _object))
    chain_id = config.get("chainId", lambda p, v: _quantity(p, v, 1, 2**64))
    fork = config.get("fork", lambda p, v: _choice(p, v, FORKS))
    header_rules = config.get("headerRules", lambda p, v: _choice(p, v, HEADER_RULES), "fixed", False)
    timestamp = top.get("timestamp", lambda p, v: _quantity(p, v, 0, TIME_LIMIT))
    fee = config.get("feePlugin", lambda p, v: _fee_config(p, v, timestamp))
    config.done()
    gas_limit = top.get("gasLimit", lambda p, v: _quantity(p, v, 21_000, 2**63))
    base_fee = top.get("baseFeePerGas", lambda p, v: _quantity(p, v, 1))
    coinbase = top.get("coinbase", _address, b"\x00" * 20, False)
    extra_data = top.get("extraData", lambda p, v: _hex_bytes(p, v, 32), b"", False)
    alloc = top.get("alloc", _alloc)
    top.done()
    if fee.vault in dict(alloc):
        raise GenesisError(
            f"alloc.{to_checksum_address(fee.vault)}",
            "collides with config.feePlugin.vault (the vault is predeployed)",
        )
    return Genesis(
        chain_id=chain_id,
        fork=fork,
        header_rules=header_rules,
        timestamp=timestamp,
        gas_limit=gas_limit,
        base_fee_per_gas=base_fee,
        coinbase=coinbase,
        extra_data=extra_data,
        alloc=alloc,
        fee=fee,
    )


def _no_duplicate_keys(pairs):
    result = {}
    for key, value in pairs:
        if key in result:
            raise GenesisError(key, "duplicate key in a JSON object")
        result[key] = value
    return result


def load_genesis(source: Union[str, "os.PathLike[str]", Mapping[str, Any]]) -> Genesis:
    """Validate a genesis file (path) or an already-parsed JSON object."""
    if isinstance(source, Mapping):
        return parse_genesis(dict(source))
    path = os.fspath(source)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as err:
        raise GenesisError(path, f"cannot read the genesis file: {err.strerror}") from None
    try:
        raw = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as err:
        raise GenesisError(
            path, f"invalid JSON at line {err.lineno} column {err.colno}: {err.msg}"
        ) from None
    return parse_genesis(raw)
