"""Shared pieces of the benchmark suite: genesis, chains, funding, transactions, timing.

Every figure the suite reports is a ratio of two sides measured side by side in the same
process and the same round (plugin vs plain py-evm Prague, same database kind, the same
signed transactions, senders recovered beforehand unless the benchmark says otherwise).
Rounds alternate which side runs first; a warm-up round is run and discarded.
"""
import argparse
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from eth.chains.base import MiningChain
from eth.db.atomic import AtomicDB
from eth.db.backends.memory import MemoryDB
from eth.vm.forks import PragueVM
from eth_abi import encode
from eth_keys import keys
from eth_utils import keccak

from bulk_trie import build_state_trie
from fee_plugin import load_genesis
from fee_plugin.artifact import vault_function
from fee_plugin.chain import fee_chain_class
from fee_plugin.layout import (
    FLAG_OPENED,
    NO_LOT,
    Head,
    LotWord,
    Totals,
    account_base_slot,
    head0_slot,
    head1_slot,
    link,
    lot_slot,
    pack_head,
    pack_lot,
    pack_totals,
)
from fee_plugin.lots import Line, Lot, account_status, charge_order, line_term, release_terms

GWEI = 10**9
ETHER = 10**18
T0 = 1_700_000_000
CHAIN_ID = 1337
VAULT = bytes.fromhex("000000000000000000000000000000000000fee0")
TREASURY = bytes.fromhex("00000000000000000000000000000000007e5a57")
TOKEN = bytes.fromhex("00000000000000000000000000000000000070c3")
LOT_VALIDITY = 10**8
BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results"
CONTRACTS = BENCH_DIR / "contracts"
OPERATOR_KEY = keys.PrivateKey(b"\x0a" * 32)


# -- keys, genesis, chains --------------------------------------------------------------

def sender_keys(count: int, offset: int = 0x1000) -> List[keys.PrivateKey]:
    return [keys.PrivateKey((offset + i).to_bytes(32, "big")) for i in range(count)]


def filler_addresses(count: int, tag: bytes = b"filler") -> List[bytes]:
    """Funded accounts that never send (no key needed): synthetic, deterministic."""
    return [keccak(tag + i.to_bytes(8, "big"))[:20] for i in range(count)]


def make_genesis(addresses: Iterable[bytes], max_live_lots: int = 16,
                 extra_alloc: Optional[Dict[bytes, dict]] = None):
    """The fee-plugin genesis (Prague, upfront lots, fixed header rules) for these senders.

    `extra_alloc` maps address -> {"balance", "code", "storage"} (python values) and is in
    the genesis of both chains (a token contract, for instance).
    """
    alloc = {"0x" + a.hex(): {"balance": str(1000 * ETHER)} for a in addresses}
    alloc["0x" + OPERATOR_KEY.public_key.to_canonical_address().hex()] = {"balance": str(10**9 * ETHER)}
    for address, account in (extra_alloc or {}).items():
        alloc["0x" + address.hex()] = {
            "balance": str(account.get("balance", 0)),
            "code": "0x" + account.get("code", b"").hex(),
            "storage": {hex(k): hex(v) for k, v in account.get("storage", {}).items()},
        }
    return load_genesis({
        "config": {
            "chainId": CHAIN_ID,
            "fork": "prague",
            "feePlugin": {
                "layoutVersion": 3,
                "vault": "0x" + VAULT.hex(),
                "operator": OPERATOR_KEY.public_key.to_checksum_address(),
                "treasury": "0x" + TREASURY.hex(),
                "lotValiditySeconds": LOT_VALIDITY,
                "consumption": "upfront",
                "minDeposit": "1",
                "maxLiveLots": max_live_lots,
            },
        },
        "timestamp": str(T0),
        "gasLimit": str(10**9),
        "baseFeePerGas": str(GWEI),
        "alloc": alloc,
    })


def plain_chain_class(genesis, vm_class=PragueVM):
    return MiningChain.configure(
        __name__="PlainPrague", vm_configuration=((0, vm_class),), chain_id=genesis.chain_id
    )


def plugin_chain_class(genesis, vm_class=None, write_back=False):
    if vm_class is None:
        return fee_chain_class(genesis, write_back)
    return MiningChain.configure(
        __name__="VariantFeePrague", vm_configuration=((0, vm_class),), chain_id=genesis.chain_id
    )


def plain_state(genesis) -> Dict[bytes, dict]:
    return {a: {"balance": acc.balance, "nonce": acc.nonce, "code": acc.code,
                "storage": dict(acc.storage)} for a, acc in genesis.alloc}


def plain_chain(genesis, extra_state=None, fast=False, vm_class=PragueVM):
    """Stock py-evm Prague with the same alloc (no vault) and the same header fields."""
    state = plain_state(genesis)
    state.update(extra_state or {})
    return new_chain(plain_chain_class(genesis, vm_class), genesis, state, fast)


def plugin_chain(genesis, lots=None, extra_state=None, fast=False, vault_code=None,
                 vm_class=None, recorded_at=None):
    """The fee-plugin chain; `lots` maps owner -> [(amount, used, start, expiry), ...]
    written straight into the vault's genesis storage (the words a grant would write,
    contracts/LAYOUT.md; tests/test_benchmarks_smoke.py checks that against real grants),
    with the vault's balance equal to what the lots still hold."""
    state = genesis.genesis_state()
    state.update(extra_state or {})
    vault = state[genesis.fee.vault]
    if vault_code is not None:
        vault["code"] = vault_code
    if lots:
        storage = dict(vault["storage"])
        held = 0
        for owner, owner_lots in lots.items():
            words, remaining = lot_storage(genesis, owner, owner_lots, recorded_at)
            storage.update(words)
            held += remaining
        vault["storage"] = storage
        vault["balance"] += held
    return new_chain(plugin_chain_class(genesis, vm_class), genesis, state, fast)


def lot_storage(genesis, owner: bytes, owner_lots, recorded_at=None) -> Tuple[Dict[int, int], int]:
    """Vault storage words for an account holding these lots, recorded at `recorded_at`
    (default: the last lot's start), as the vault's deposit/grant path would record them."""
    offsets, remaining = _account_words(genesis.fee, tuple(map(tuple, owner_lots)), recorded_at)
    base = account_base_slot(owner)
    return {base + offset: word for offset, word in offsets}, remaining


@functools.lru_cache(maxsize=64)
def _account_words(fee, owner_lots, recorded_at):
    """((slot offset from the account's base slot, word), ...), remaining wei: the lots
    linked in charge order, the release line anchored at `t` (layout v3)."""
    policy = fee.release_policy
    lots = charge_order(Lot(i, amount, used, start, expiry)
                        for i, (amount, used, start, expiry) in enumerate(owner_lots))
    t = recorded_at if recorded_at is not None else max(lot.start for lot in lots)
    line = Line(sum(line_term(lot, t, policy) for lot in lots),
                sum(release_terms(lot.amount, lot.start, lot.expiry, policy)[1] for lot in lots), t)
    available = line.available
    head = Head(line=line, first=link(lots[0].slot), flags=FLAG_OPENED,
                status=int(account_status(True, False, False, available, fee.low_balance_wei)))
    totals = Totals(deposited=sum(lot.amount for lot in lots), last_expiry=max(lot.expiry for lot in lots))
    words = [(head0_slot(0), pack_head(head)), (head1_slot(0), pack_totals(totals))]
    links = [link(lot.slot) for lot in lots[1:]] + [NO_LOT]
    words.extend((lot_slot(0, lot.slot), pack_lot(LotWord(lot, following))) for lot, following in zip(lots, links))
    return tuple(words), sum(lot.remaining for lot in lots)


def uniform_lots(count: int, amount: int = 10 * ETHER, start: int = T0 + 1):
    """`count` lots granted at `start`, validity LOT_VALIDITY + i (distinct expiries)."""
    return [(amount, 0, start, start + LOT_VALIDITY + i) for i in range(count)]


def new_chain(chain_class, genesis, state, fast=False):
    if not fast:
        return chain_class.from_genesis(AtomicDB(), genesis.genesis_params(), state)
    db = AtomicDB()
    root = build_state_trie(db, state)
    vm_class = chain_class.get_vm_class_for_block_number(0)
    header = vm_class.create_genesis_header(**dict(genesis.genesis_params(), state_root=root))
    return chain_class.from_genesis_header(db, header)


def open_chain(chain, chain_class):
    """The same database (head, state) seen through another chain class (instrumented)."""
    return chain_class(chain.chaindb.db)


def copy_chain(chain, chain_class=None):
    """An independent copy of an in-memory chain (for a fresh importer per round)."""
    kv = chain.chaindb.db.wrapped_db.kv_store
    db = AtomicDB(MemoryDB(dict(kv)))
    return (chain_class or type(chain))(db)


# -- funding by real grants (senders keep nonce 0) -------------------------------------

def fund_by_grants(chain, genesis, owners: Sequence[bytes], lots_per_owner: int = 1,
                   amount: int = 10 * ETHER, timestamp: int = T0 + 1):
    """The operator grants every owner `lots_per_owner` lots (validity LOT_VALIDITY + i)
    in one block mined at `timestamp`; owners keep nonce 0."""
    fn = vault_function("grant")
    builder = chain.get_vm().get_transaction_builder()
    txs = []
    for owner in owners:
        for i in range(lots_per_owner):
            data = fn.selector + encode(fn.input_types, (owner, LOT_VALIDITY + i))
            txs.append(builder.new_unsigned_dynamic_fee_transaction(
                genesis.chain_id, len(txs), GWEI, 2 * GWEI, 300_000, genesis.fee.vault,
                amount, data, ()
            ).as_signed_transaction(OPERATOR_KEY))
    chain.set_header_timestamp(timestamp)
    _, receipts, _ = chain.mine_all(txs)
    assert all(r.state_root == b"\x01" for r in receipts), "a grant failed"
    return chain


# -- transactions -----------------------------------------------------------------------

def dynamic_tx(key, nonce, to, value=0, data=b"", gas=21_000, chain_id=CHAIN_ID):
    """A signed type-2 transaction as a Prague node decodes it from the wire (py-evm's
    builder returns a London-typed object, which a Prague block cannot RLP-encode)."""
    builder = PragueVM.get_transaction_builder()
    signed = builder.new_unsigned_dynamic_fee_transaction(
        chain_id, nonce, GWEI, 2 * GWEI, gas, to, value, data, ()
    ).as_signed_transaction(key)
    return builder.decode(signed.encode())


def transfers(sender_keys_: Sequence, per_sender: int, first_nonce: int = 0, recover=True):
    """per_sender rounds over the senders (a block where payers repeat, interleaved)."""
    txs = [dynamic_tx(key, first_nonce + n, (0xB0B0_0000 + i).to_bytes(20, "big"), value=1)
           for n in range(per_sender) for i, key in enumerate(sender_keys_)]
    return recovered(txs) if recover else txs


def recovered(txs):
    for tx in txs:
        _ = tx.sender  # recovered once, outside any timed region, for both sides
    return txs


# -- vyper (benchmark contracts, compiled at run time) ---------------------------------

_COMPILED: Dict[str, dict] = {}


def compile_contract(name: str) -> dict:
    """benchmarks/contracts/<name>.vy compiled with the installed Vyper (cached)."""
    if name not in _COMPILED:
        from vyper.compiler import compile_code

        source = (CONTRACTS / f"{name}.vy").read_text()
        out = compile_code(source, output_formats=[
            "bytecode", "bytecode_runtime", "layout", "method_identifiers"])
        _COMPILED[name] = {
            "init": bytes.fromhex(out["bytecode"][2:]),
            "runtime": bytes.fromhex(out["bytecode_runtime"][2:]),
            "layout": out["layout"]["storage_layout"],
            "selectors": {k: bytes.fromhex(v[2:]) for k, v in out["method_identifiers"].items()},
        }
    return _COMPILED[name]


def vyper_hashmap_slot(slot: int, key: bytes) -> int:
    """Vyper HashMap location: keccak256(slot ‖ key) (slot first, unlike Solidity)."""
    return int.from_bytes(keccak(slot.to_bytes(32, "big") + key.rjust(32, b"\x00")), "big")


# -- timing -----------------------------------------------------------------------------

def time_block(chain, txs, timestamp: int):
    """(seconds, receipts): apply `txs` on a VM for the next block and compute the state
    root (`state.persist()`); the chain's head does not move, so rounds repeat."""
    seconds, receipts, _ = time_block_with_root(chain, txs, timestamp)
    return seconds, receipts


def time_block_with_root(chain, txs, timestamp: int):
    """`time_block`, plus the state root it computed."""
    header = chain.header.copy(timestamp=timestamp)
    vm = chain.get_vm(header)
    start = time.perf_counter()
    _, receipts, _ = vm.apply_all_transactions(txs, header)
    vm.state.persist()
    return time.perf_counter() - start, receipts, vm.state.state_root


def side_by_side(rounds: int, cases: Sequence[Tuple[str, Dict[str, Callable[[int], float]]]],
                 warmup: int = 1) -> Dict[str, Dict[str, List[float]]]:
    """Run every case's sides once per round, alternating which side goes first (and
    rotating the case order), after `warmup` discarded rounds. Each side is a callable
    round -> seconds. Returns {case: {side: [seconds per round]}}."""
    times = {name: {side: [] for side in sides} for name, sides in cases}
    for r in range(-warmup, rounds):
        shift = r % len(cases)
        for c, (name, sides) in enumerate(cases[shift:] + cases[:shift]):
            order = list(sides)
            if (r + c) % 2:
                order.reverse()
            for side in order:
                seconds = sides[side](r)
                if r >= 0:
                    times[name][side].append(seconds)
    return times


def summary(values: Sequence[float], digits: int = 4) -> Dict[str, float]:
    return {"median": round(statistics.median(values), digits),
            "min": round(min(values), digits), "max": round(max(values), digits)}


def ratios(numerator: Sequence[float], denominator: Sequence[float]) -> List[float]:
    return [a / b for a, b in zip(numerator, denominator, strict=True)]


def fmt(s: Dict[str, float], unit: str = "x") -> str:
    return f"{s['median']:.3f}{unit} ({s['min']:.3f}–{s['max']:.3f})"


# -- machine ----------------------------------------------------------------------------

PACKAGES = ("py-evm", "trie", "rlp", "eth-hash", "eth-keys", "eth-utils", "eth-abi",
            "coincurve", "pycryptodome", "vyper", "fee_plugin")


def machine() -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=BENCH_DIR,
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "eth_hash_backend": os.environ.get("ETH_HASH_BACKEND", "auto"),
        "git_commit": commit,
        "packages": versions,
    }


def script_main(doc: str, run: Callable[..., dict], extra_arguments=None) -> None:
    """One benchmark script's command line: `--rounds N` (plus `extra_arguments(parser)`,
    which returns a function of the parsed args giving more keyword arguments for `run`);
    prints the result, with the machine description, as JSON."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    more = extra_arguments(parser) if extra_arguments else (lambda args: {})
    args = parser.parse_args()
    result = run(rounds=args.rounds, **more(args))
    result["machine"] = machine()
    print(json.dumps(result, indent=2))
