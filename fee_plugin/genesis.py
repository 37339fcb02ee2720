"""Genesis file: parse and validate a geth-style JSON file into a frozen config.

A malformed genesis must never start a node: a typo that silently fell back to a default
would fork the chain or mis-price every transaction. So every problem raises GenesisError
naming the JSON path of the offending field, unknown keys are errors, and iteration over
JSON objects is sorted, so which error is reported (and every encoding) never depends on
dict order. Integers only: quantities are wei, seconds and counts. Reference:
docs/genesis.md; storage layout of the vault predeploy: contracts/LAYOUT.md; how JSON values
are read (quantities, addresses, strict objects, the file): genesis_fields.py.
"""
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Tuple, Union

# The only py-evm imports: the addresses Cancun/Prague reserve for system contracts.
from eth.constants import SYSTEM_ADDRESS
from eth.vm.forks.cancun.constants import BEACON_ROOTS_ADDRESS
from eth.vm.forks.prague.constants import (
    CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS,
    DEPOSIT_CONTRACT_ADDRESS,
    HISTORY_STORAGE_ADDRESS,
    WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS,
)
from eth_utils import keccak

from .genesis_fields import (
    ROOT, UINT256_LIMIT, Fields, GenesisError, bounded, join_path, object_entries, one_of,
    parse_address, parse_hex_bytes, parse_object, parse_quantity, read_json,
)
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

SOURCE_HASH_FORMAT = "fee_plugin.genesis/2"  # bump if the canonical encoding changes

# The vault storage layout (contracts/LAYOUT.md) this release reads and writes. A genesis
# names it, because reading a vault written in another layout would misread every account;
# there is no migration, so a chain created with an older layout is re-created.
LAYOUT_VERSION = 3
SUPPORTED_LAYOUT_VERSIONS = (LAYOUT_VERSION,)


# -- the frozen result -----------------------------------------------------------------


@dataclass(frozen=True)
class FeeConfig:
    """config.feePlugin: the vault's genesis constants (also written to its storage)."""

    layout_version: int  # one of SUPPORTED_LAYOUT_VERSIONS
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
            "layoutVersion": fee.layout_version,
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


# -- sections -----------------------------------------------------------------------------

_FEE_KEYS = (
    "layoutVersion", "vault", "operator", "treasury", "lotValiditySeconds", "consumption",
    "initialReleaseBps", "minDeposit", "maxLiveLots", "lowBalance", "noAccount",
)
_CONFIG_KEYS = ("chainId", "fork", "headerRules", "feePlugin")
_TOP_KEYS = ("config", "timestamp", "gasLimit", "baseFeePerGas", "coinbase", "extraData", "alloc")
_ACCOUNT_KEYS = ("balance", "nonce", "code", "storage")


def _fee_config(path: str, value: Any) -> FeeConfig:
    f = Fields(path, value, _FEE_KEYS)
    fee = FeeConfig(
        layout_version=f.get("layoutVersion", _layout_version, missing=_LAYOUT_MISSING),
        vault=f.get("vault", parse_address),
        operator=f.get("operator", parse_address),
        treasury=f.get("treasury", parse_address),
        lot_validity_seconds=f.get("lotValiditySeconds", bounded(1, TIME_LIMIT)),
        consumption=CONSUMPTION_MODES[
            f.get("consumption", one_of(tuple(CONSUMPTION_MODES)), "uniform")
        ],
        initial_release_bps=f.get("initialReleaseBps", bounded(0, BPS_DENOMINATOR + 1), 0),
        min_deposit_wei=f.get("minDeposit", bounded(1, AMOUNT_LIMIT)),
        max_live_lots=f.get("maxLiveLots", bounded(1, LOTS_CAPACITY + 1)),
        low_balance_wei=f.get("lowBalance", bounded(0, TOTAL_LIMIT), 0),
        no_account=f.get("noAccount", one_of(NO_ACCOUNT_RULES), "reject"),
    )
    _check_roles(path, fee)
    return fee


_LAYOUT_ONLY = (
    f"this release supports only layout {', '.join(map(str, SUPPORTED_LAYOUT_VERSIONS))} "
    f"(contracts/LAYOUT.md); a chain created with another layout must be re-created from a "
    f"genesis with layoutVersion {LAYOUT_VERSION}"
)
_LAYOUT_MISSING = f"required field is missing (the vault storage layout version); {_LAYOUT_ONLY}"


def _layout_version(path: str, value: Any) -> int:
    """The vault storage layout the genesis was written for: one this release implements."""
    try:
        version = parse_quantity(path, value)
    except GenesisError as err:
        raise GenesisError(path, f"{err.why}; {_LAYOUT_ONLY}") from None
    if version not in SUPPORTED_LAYOUT_VERSIONS:
        retired = 1 <= version < min(SUPPORTED_LAYOUT_VERSIONS)
        problem = "is no longer supported" if retired else "is unknown to this release"
        raise GenesisError(path, f"layout {version} {problem}: {_LAYOUT_ONLY}")
    return version


def _check_roles(path: str, fee: FeeConfig) -> None:
    """Vault, operator and treasury are three different addresses; the vault is not reserved."""
    roles = (("vault", fee.vault), ("operator", fee.operator), ("treasury", fee.treasury))
    for i, (name, address) in enumerate(roles):
        for other, other_address in roles[:i]:
            if address == other_address:
                raise GenesisError(join_path(path, name), f"must differ from {other}")
    if fee.vault in RESERVED_ADDRESSES:
        raise GenesisError(
            join_path(path, "vault"), f"is reserved: {RESERVED_ADDRESSES[fee.vault]}"
        )


def _storage(path: str, value: Any) -> Tuple[Tuple[int, int], ...]:
    """slot -> value, both quantities; spellings of one slot collide; zero values dropped."""
    words: Dict[int, int] = {}
    for key_path, key, raw in object_entries(path, value):
        slot = parse_quantity(key_path, key)
        if slot in words:
            raise GenesisError(key_path, f"duplicate storage slot {slot:#x} (spelled twice)")
        words[slot] = parse_quantity(key_path, raw)
    return tuple((slot, word) for slot, word in sorted(words.items()) if word)


def _alloc_account(path: str, value: Any) -> AllocAccount:
    f = Fields(path, value, _ACCOUNT_KEYS)
    return AllocAccount(
        balance=f.get("balance", parse_quantity),
        nonce=f.get("nonce", bounded(0, UINT64_LIMIT), 0),
        code=f.get("code", parse_hex_bytes, b""),
        storage=f.get("storage", _storage, ()),
    )


def _alloc(path: str, value: Any, vault: bytes) -> Tuple[Tuple[bytes, AllocAccount], ...]:
    """Accounts sorted by address. Keys may omit 0x (as geth allows); one address spelled
    twice (case) is an error, and so is the vault address (the loader predeploys it)."""
    accounts: Dict[bytes, AllocAccount] = {}
    for key_path, key, account in object_entries(path, value):
        address = parse_address(key_path, key, prefix_optional=True)
        if address in accounts:
            raise GenesisError(key_path, "duplicate address (the same address spelled twice)")
        if address == vault:
            raise GenesisError(
                key_path,
                "collides with config.feePlugin.vault (the vault is predeployed; "
                "remove it from alloc)",
            )
        accounts[address] = _alloc_account(key_path, account)
    return tuple(sorted(accounts.items()))


def parse_genesis(raw: Any) -> Genesis:
    """Validate an already-parsed genesis JSON document (see docs/genesis.md)."""
    top = Fields(ROOT, raw, _TOP_KEYS)
    config = Fields("config", top.get("config", parse_object), _CONFIG_KEYS)
    chain_id = config.get("chainId", bounded(1, UINT64_LIMIT))
    fork = config.get("fork", one_of(FORKS))
    header_rules = config.get("headerRules", one_of(HEADER_RULES), "fixed")
    fee = config.get("feePlugin", _fee_config)
    timestamp = top.get("timestamp", bounded(0, TIME_LIMIT))
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
        gas_limit=top.get("gasLimit", bounded(MIN_GAS_LIMIT, GAS_LIMIT_LIMIT)),
        # A zero base fee would make every transaction free (costless execution is free).
        base_fee_per_gas=top.get("baseFeePerGas", bounded(1, UINT256_LIMIT)),
        coinbase=top.get("coinbase", parse_address, ZERO_ADDRESS),
        extra_data=top.get(
            "extraData", lambda p, v: parse_hex_bytes(p, v, MAX_EXTRA_DATA_BYTES), b""
        ),
        alloc=top.get("alloc", lambda p, v: _alloc(p, v, fee.vault)),
        fee=fee,
    )


def load_genesis(source: Union[str, "os.PathLike[str]", Mapping[str, Any]]) -> Genesis:
    """Validate a genesis: a path to a JSON file, or an already-parsed JSON object (dict)."""
    if isinstance(source, Mapping):
        return parse_genesis(source)
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"load_genesis takes a path or a dict, not {type(source).__name__}")
    return parse_genesis(read_json(os.fspath(source)))
