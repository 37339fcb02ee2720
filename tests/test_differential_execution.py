"""Differential execution: the fee VM runs the EVM exactly like stock py-evm.

The same signed transactions run on a stock Cancun/Prague chain and on the fee VM, from the
same genesis state (vault included) and the same setup block (operator grants, paid
natively on both). Receipts' status, gas used and non-vault logs must be equal, and every
account equal except the senders' ETH (gas not bought), the vault and the treasury, whose
differences are exactly the fees; the coinbase gets the same tips on both.
"""
import functools

import rlp
from eth.rlp.accounts import Account
from trie import HexaryTrie

import pytest
from eth._utils.address import generate_contract_address
from eth.chains.base import MiningChain
from eth.db.atomic import AtomicDB
from eth.vm.forks import CancunVM, PragueVM
from hypothesis import given, settings
from hypothesis import strategies as st
from vyper.compiler import compile_code

from fee_plugin import build_chain

from .support.chain import (
    ETHER,
    GENESIS_TIME,
    GWEI,
    OPERATOR_KEY,
    TREASURY,
    USER_KEYS,
    VAULT,
    address,
    calldata,
    genesis_dict,
    mine,
    sign,
)
from fee_plugin import load_genesis
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address

STOCK = {"cancun": CancunVM, "prague": PragueVM}
WORKLOAD = b"\x00" * 19 + b"\xaa"  # address of the workload contract in genesis
SENDERS = USER_KEYS[:4]
WORKLOAD_SOURCE = """
# pragma version ~=0.4.3
# pragma evm-version cancun
event Note:
    who: indexed(address)
    value: uint256

stored: public(HashMap[uint256, uint256])

@external
@payable
def put(k: uint256, v: uint256):
    self.stored[k] = v

@external
def note(v: uint256):
    log Note(who=msg.sender, value=v)

@external
def fail(v: uint256):
    self.stored[v] = v
    raise "workload revert"

@external
def burn(n: uint256):
    for i: uint256 in range(n, bound=100000):
        self.stored[i % 7] = i
"""


@functools.lru_cache(maxsize=1)
def workload_code():
    out = compile_code(WORKLOAD_SOURCE, output_formats=["bytecode", "bytecode_runtime"])
    return bytes.fromhex(out["bytecode"][2:]), bytes.fromhex(out["bytecode_runtime"][2:])


def call(signature, *args):
    types = signature[signature.index("(") + 1 : -1].split(",") if "()" not in signature else []
    return function_signature_to_4byte_selector(signature) + encode(types, args)


def genesis_for(fork):
    raw = genesis_dict(consumption="upfront")
    raw["config"]["fork"] = fork
    raw["config"]["headerRules"] = "ethereum"  # stock py-evm's header rules on both sides
    raw["alloc"][to_checksum_address(WORKLOAD)] = {
        "balance": "0", "code": "0x" + workload_code()[1].hex(), "storage": {"0x1": "0x5"},
    }
    return load_genesis(raw)


def chains(fork, write_back=False):
    genesis = genesis_for(fork)
    fee = build_chain(genesis, write_back=write_back)
    stock_class = MiningChain.configure(
        __name__="Stock", vm_configuration=((0, STOCK[fork]),), chain_id=genesis.chain_id
    )
    stock = stock_class.from_genesis(AtomicDB(), genesis.genesis_params(), genesis.genesis_state())
    # Setup block: the operator grants every sender a lot (natively paid on both chains).
    for chain in (fee, stock):
        chain.header = chain.header.copy(coinbase=genesis.coinbase)
        grants = []
        for i, key in enumerate(SENDERS):
            grants.append(sign(chain, OPERATOR_KEY, VAULT, value=10 * ETHER, nonce=i, gas=300_000,
                               data=calldata("grant", address(key), 10**6)))
        mine(chain, grants, GENESIS_TIME + 12)
    assert fee.get_vm().state.state_root == stock.get_vm().state.state_root
    return genesis, fee, stock


KINDS = ("transfer", "put", "clear", "note", "fail", "burn", "create", "oog")


def build_tx(chain, kind, key, nonce, tx_type, arg):
    kw = dict(kind=tx_type, nonce=nonce, max_fee=3 * GWEI, tip=GWEI)
    if tx_type != "legacy":
        kw["access_list"] = ((WORKLOAD, (1, 2)),) if arg % 2 else ()
    if kind == "transfer":
        return sign(chain, key, b"\x42" * 20, value=arg + 1, gas=30_000, **kw)
    if kind == "put":
        return sign(chain, key, WORKLOAD, value=arg, data=call("put(uint256,uint256)", arg % 5, arg + 1), gas=80_000, **kw)
    if kind == "clear":  # a storage refund
        return sign(chain, key, WORKLOAD, data=call("put(uint256,uint256)", 1, 0), gas=80_000, **kw)
    if kind == "note":
        return sign(chain, key, WORKLOAD, data=call("note(uint256)", arg), gas=60_000, **kw)
    if kind == "fail":
        return sign(chain, key, WORKLOAD, data=call("fail(uint256)", arg), gas=80_000, **kw)
    if kind == "burn":
        return sign(chain, key, WORKLOAD, data=call("burn(uint256)", 3 + arg % 5), gas=200_000, **kw)
    if kind == "oog":
        return sign(chain, key, WORKLOAD, data=call("burn(uint256)", 5000), gas=100_000, **kw)
    return sign(chain, key, None, data=workload_code()[0], gas=600_000, **kw)


def non_vault_logs(receipt):
    return [(log.address, log.topics, log.data) for log in receipt.logs if log.address != VAULT]


def mine_whole(chain, transactions, timestamp):
    """The block built from all transactions at once (`mine_all`): the path on which the
    write-back design keeps charges across transactions."""
    chain.set_header_timestamp(timestamp)
    result, receipts, _ = chain.mine_all(transactions)
    return result.imported_block, receipts


def run_both(fork, steps, write_back=False):
    genesis, fee, stock = chains(fork, write_back)
    apply_block = mine_whole if write_back else mine
    nonces = {address(k): 0 for k in SENDERS}
    touched = {address(k) for k in SENDERS} | {WORKLOAD, b"\x42" * 20, genesis.coinbase, TREASURY, VAULT}
    paid = {a: 0 for a in nonces}
    base_part = 0
    t = GENESIS_TIME + 20
    for block_steps in steps:
        t += 13
        pairs = []
        for kind, who, tx_type, arg in block_steps:
            key = SENDERS[who]
            sender = address(key)
            txs = [build_tx(c, kind, key, nonces[sender], tx_type, arg) for c in (fee, stock)]
            assert txs[0] == txs[1]
            if kind == "create":
                touched.add(generate_contract_address(sender, nonces[sender]))
            nonces[sender] += 1
            pairs.append(txs[0])
        for chain in (fee, stock):  # stock headers do not inherit the coinbase
            chain.header = chain.header.copy(coinbase=genesis.coinbase)
        fee_block, fee_receipts = apply_block(fee, pairs, t)
        stock_block, stock_receipts = apply_block(stock, pairs, t)
        base_fee = fee_block.header.base_fee_per_gas
        assert base_fee == stock_block.header.base_fee_per_gas
        previous = 0
        for tx, fr, sr in zip(pairs, fee_receipts, stock_receipts):
            assert (fr.state_root, fr.gas_used) == (sr.state_root, sr.gas_used)
            assert non_vault_logs(fr) == non_vault_logs(sr)
            gas = fr.gas_used - previous
            previous = fr.gas_used
            price = min(tx.max_fee_per_gas, tx.max_priority_fee_per_gas + base_fee)
            paid[tx.sender] += gas * price
            base_part += gas * base_fee
    fee_state, stock_state = fee.get_vm().state, stock.get_vm().state
    for account in sorted(touched):
        expected = stock_state.get_balance(account)
        if account in paid:
            expected += paid[account]  # gas never bought from the ETH balance
        elif account == VAULT:
            expected -= sum(paid.values())
        elif account == TREASURY:
            expected += base_part  # lot-paid base fee goes to the treasury, not burned
        assert fee_state.get_balance(account) == expected, account.hex()
        fee_record, stock_record = account_record(fee, account), account_record(stock, account)
        if account == TREASURY and stock_record is None:
            continue  # on stock py-evm nothing is paid to the treasury, so it may not exist
        assert (fee_record is None) == (stock_record is None), account.hex()
        if fee_record is not None:
            assert (fee_record.nonce, fee_record.code_hash) == (stock_record.nonce, stock_record.code_hash)
            if account != VAULT:
                assert fee_record.storage_root == stock_record.storage_root, account.hex()
    return sum(paid.values())


def account_record(chain, account):
    """The account as committed in the head's state trie (None if absent)."""
    raw = HexaryTrie(chain.chaindb.db, chain.get_canonical_head().state_root).get(keccak(account))
    return rlp.decode(raw, sedes=Account) if raw else None


@pytest.mark.parametrize("write_back", [False, True], ids=["per-tx", "write-back"])
@pytest.mark.parametrize("fork", ["cancun", "prague"])
def test_every_workload_kind_and_tx_type_matches_stock(fork, write_back):
    steps = [
        [(kind, i % len(SENDERS), tx_type, i) for i, kind in enumerate(KINDS)]
        for tx_type in ("legacy", "access_list", "dynamic")
    ]
    # payers repeating in a block, then code: charges kept across transactions, then stored
    steps.append([("transfer", i % len(SENDERS), "dynamic", i) for i in range(9)] + [("put", 0, "dynamic", 7)])
    assert run_both(fork, steps, write_back) > 0


step = st.tuples(
    st.sampled_from(KINDS),
    st.integers(0, len(SENDERS) - 1),
    st.sampled_from(["legacy", "access_list", "dynamic"]),
    st.integers(0, 50),
)


@settings(max_examples=16)
@given(
    st.sampled_from(["cancun", "prague"]),
    st.lists(st.lists(step, min_size=1, max_size=6), min_size=1, max_size=4),
    st.booleans(),
)
def test_random_workloads_match_stock(fork, steps, write_back):
    run_both(fork, steps, write_back)
