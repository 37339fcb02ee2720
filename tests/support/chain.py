"""Test helpers: a genesis built in code, keys, signed transactions of every type, mining."""
import copy
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Sequence

from eth_abi import encode
from eth_keys import keys
from eth_utils import to_canonical_address, to_checksum_address

from fee_plugin import build_chain, load_genesis
from fee_plugin.artifact import vault_function

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_GENESIS = REPO / "examples" / "genesis.json"

GWEI = 10**9
ETHER = 10**18
GENESIS_TIME = 1_700_000_000
VAULT = to_canonical_address("0x000000000000000000000000000000000000fee0")
OPERATOR_KEY = keys.PrivateKey(b"\x0a" * 32)
TREASURY = to_canonical_address("0x7e5f4552091a69125d5dfcb7b8c2659029395bdf")
COINBASE = to_canonical_address("0x00000000000000000000000000000000c0ffee00")
USER_KEYS = tuple(keys.PrivateKey(bytes([0x10 + i]) * 32) for i in range(6))
CHAIN_ID = 1337
BASE_FEE = 1 * GWEI
VALIDITY = 1000  # seconds: short, so tests cross expiries with small time jumps


def address(key: keys.PrivateKey) -> bytes:
    return key.public_key.to_canonical_address()


def genesis_dict(**fee_overrides: Any) -> Dict[str, Any]:
    """A private-chain genesis with funded users; fee config overridable per test."""
    fee = {
        "layoutVersion": 3,
        "vault": to_checksum_address(VAULT),
        "operator": to_checksum_address(address(OPERATOR_KEY)),
        "treasury": to_checksum_address(TREASURY),
        "lotValiditySeconds": VALIDITY,
        "consumption": "uniform",
        "initialReleaseBps": 0,
        "minDeposit": str(10**15),
        "maxLiveLots": 8,
        "lowBalance": str(10**16),
        "noAccount": "reject",
    }
    fee.update(fee_overrides)
    alloc = {
        to_checksum_address(address(key)): {"balance": str(100 * ETHER)}
        for key in (OPERATOR_KEY,) + USER_KEYS
    }
    return {
        "config": {"chainId": CHAIN_ID, "fork": "prague", "headerRules": "fixed", "feePlugin": fee},
        "timestamp": hex(GENESIS_TIME),
        "gasLimit": "30000000",
        "baseFeePerGas": str(BASE_FEE),
        "coinbase": to_checksum_address(COINBASE),
        "alloc": alloc,
    }


def make_genesis(fork: str = "prague", **fee_overrides: Any):
    raw = genesis_dict(**fee_overrides)
    raw["config"]["fork"] = fork
    return load_genesis(copy.deepcopy(raw))


def new_chain(fork: str = "prague", **fee_overrides: Any):
    genesis = make_genesis(fork, **fee_overrides)
    return genesis, build_chain(genesis)


def calldata(function: str, *args: Any) -> bytes:
    fn = vault_function(function)
    return fn.selector + encode(fn.input_types, args)


def sign(
    chain,
    key: keys.PrivateKey,
    to: Optional[bytes],
    value: int = 0,
    data: bytes = b"",
    gas: int = 100_000,
    kind: str = "dynamic",
    max_fee: int = 2 * GWEI,
    tip: int = GWEI // 2,
    nonce: Optional[int] = None,
    access_list: Sequence = (),
    chain_id: int = CHAIN_ID,
):
    """A signed transaction of `kind` legacy | access_list | dynamic (1559)."""
    vm = chain.get_vm()
    if nonce is None:
        nonce = vm.state.get_nonce(address(key))
    to = b"" if to is None else to
    builder = vm.get_transaction_builder()
    if kind == "legacy":
        return vm.create_unsigned_transaction(
            nonce=nonce, gas_price=max_fee, gas=gas, to=to, value=value, data=data
        ).as_signed_transaction(key, chain_id=chain_id)
    if kind == "access_list":
        return builder.new_unsigned_access_list_transaction(
            chain_id, nonce, max_fee, gas, to, value, data, tuple(access_list)
        ).as_signed_transaction(key)
    return builder.new_unsigned_dynamic_fee_transaction(
        chain_id, nonce, tip, max_fee, gas, to, value, data, tuple(access_list)
    ).as_signed_transaction(key)


def mine(chain, transactions: Iterable, timestamp: int):
    """Apply transactions one by one at `timestamp`, then mine; returns (block, receipts)."""
    chain.set_header_timestamp(timestamp)
    receipts = []
    for tx in transactions:
        _, receipt, _ = chain.apply_transaction(tx)
        receipts.append(receipt)
    block = chain.mine_block()
    return block, receipts


def total_eth(chain, addresses: Iterable[bytes]) -> int:
    state = chain.get_vm().state
    return sum(state.get_balance(a) for a in addresses)
