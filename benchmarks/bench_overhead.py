"""Per-transaction overhead of the fee plugin versus plain py-evm, measured side by side.

Both chains start from the same alloc and apply the very same signed value transfers in
the same process; rounds alternate which side runs first so machine noise cancels. Reported
as the median ratio plugin/plain (state root included) with its spread.

    python benchmarks/bench_overhead.py --senders 100 --per-sender 5 --rounds 7
"""
import argparse
import json
import platform
import statistics
import sys
import time
from importlib import metadata
from pathlib import Path

from eth.chains.base import MiningChain
from eth.db.atomic import AtomicDB
from eth.vm.forks import PragueVM
from eth_keys import keys

from fee_plugin import build_chain, load_genesis
from fee_plugin.artifact import vault_function

from eth_abi import encode

GWEI = 10**9
ETHER = 10**18
T0 = 1_700_000_000
RESULTS = Path(__file__).resolve().parent / "results"


def genesis_for(sender_keys, operator_key):
    alloc = {k.public_key.to_checksum_address(): {"balance": str(1000 * ETHER)} for k in sender_keys}
    alloc[operator_key.public_key.to_checksum_address()] = {"balance": str(10**9 * ETHER)}
    return load_genesis({
        "config": {
            "chainId": 1337,
            "fork": "prague",
            "feePlugin": {
                "vault": "0x000000000000000000000000000000000000fee0",
                "operator": operator_key.public_key.to_checksum_address(),
                "treasury": "0x00000000000000000000000000000000007e5a57",
                "lotValiditySeconds": 10**8,
                "consumption": "upfront",
                "minDeposit": "1",
                "maxLiveLots": 16,
            },
        },
        "timestamp": str(T0),
        "gasLimit": str(10**9),
        "baseFeePerGas": str(GWEI),
        "alloc": alloc,
    })


def plain_chain(genesis):
    """Stock py-evm Prague with the same alloc (no vault) and the same header fields."""
    chain_class = MiningChain.configure(
        __name__="PlainPrague", vm_configuration=((0, PragueVM),), chain_id=genesis.chain_id
    )
    state = {a: {"balance": acc.balance, "nonce": acc.nonce, "code": acc.code, "storage": dict(acc.storage)}
             for a, acc in genesis.alloc}
    return chain_class.from_genesis(AtomicDB(), genesis.genesis_params(), state)


def fund_lots(chain, genesis, operator_key, sender_keys):
    """Operator grants every sender one lot (senders keep nonce 0 for identical txs)."""
    fn = vault_function("grant")
    vm = chain.get_vm()
    chain.set_header_timestamp(T0 + 1)
    for nonce, key in enumerate(sender_keys):
        data = fn.selector + encode(fn.input_types, (key.public_key.to_canonical_address(), 10**8))
        tx = vm.get_transaction_builder().new_unsigned_dynamic_fee_transaction(
            genesis.chain_id, nonce, GWEI, 2 * GWEI, 300_000, genesis.fee.vault, 10 * ETHER, data, ()
        ).as_signed_transaction(operator_key)
        chain.apply_transaction(tx)
    chain.mine_block()


def transfers(genesis, sender_keys, per_sender):
    builder = PragueVM.get_transaction_builder()
    txs = []
    for nonce in range(per_sender):
        for i, key in enumerate(sender_keys):
            to = (0xB0B0_0000 + i).to_bytes(20, "big")
            txs.append(builder.new_unsigned_dynamic_fee_transaction(
                genesis.chain_id, nonce, GWEI, 2 * GWEI, 21_000, to, 1, b"", ()
            ).as_signed_transaction(key))
    for tx in txs:
        tx.sender  # recover once, outside the timed region, for both sides
    return txs


def time_block(chain, txs, timestamp):
    """Seconds to apply txs and compute the state root on a VM for the next block."""
    header = chain.header.copy(timestamp=timestamp)
    vm = chain.get_vm(header)
    start = time.perf_counter()
    vm.apply_all_transactions(txs, header)
    vm.state.persist()
    return time.perf_counter() - start


def run(senders=100, per_sender=5, rounds=7):
    sender_keys = [keys.PrivateKey((0x1000 + i).to_bytes(32, "big")) for i in range(senders)]
    operator_key = keys.PrivateKey(b"\x0a" * 32)
    genesis = genesis_for(sender_keys, operator_key)
    plugin = build_chain(genesis)
    fund_lots(plugin, genesis, operator_key, sender_keys)
    plain = plain_chain(genesis)
    txs = transfers(genesis, sender_keys, per_sender)
    ratios, plugin_times, plain_times = [], [], []
    for r in range(rounds):
        timestamp = T0 + 10 + r
        if r % 2:
            t_plain = time_block(plain, txs, timestamp)
            t_plugin = time_block(plugin, txs, timestamp)
        else:
            t_plugin = time_block(plugin, txs, timestamp)
            t_plain = time_block(plain, txs, timestamp)
        plugin_times.append(t_plugin)
        plain_times.append(t_plain)
        ratios.append(t_plugin / t_plain)
    return {
        "benchmark": "value transfers, plugin vs plain py-evm Prague, state root included",
        "transactions": len(txs),
        "senders": senders,
        "rounds": rounds,
        "ratio_median": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "plain_tx_per_s_median": len(txs) / statistics.median(plain_times),
        "plugin_tx_per_s_median": len(txs) / statistics.median(plugin_times),
    }


def machine():
    packages = ("py-evm", "trie", "eth-hash", "coincurve", "pycryptodome")
    versions = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"python": sys.version.split()[0], "platform": platform.platform(),
            "processor": platform.machine(), "packages": versions}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senders", type=int, default=100)
    parser.add_argument("--per-sender", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    result = run(args.senders, args.per_sender, args.rounds)
    result["machine"] = machine()
    print(json.dumps(result, indent=2))
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "overhead.json").write_text(json.dumps(result, indent=2) + "\n")
        (RESULTS / "overhead.md").write_text(
            "| benchmark | txs | rounds | plugin/plain median | min | max |\n|---|---|---|---|---|---|\n"
            f"| {result['benchmark']} | {result['transactions']} | {result['rounds']} | "
            f"{result['ratio_median']:.2f}x | {result['ratio_min']:.2f}x | {result['ratio_max']:.2f}x |\n\n"
            f"Machine: {result['machine']}\n"
        )


if __name__ == "__main__":
    main()
