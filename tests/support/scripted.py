"""A scripted fee history on a real node: deposits, lot-paid charges, and a lot that
expires by time alone (short validity, --block-time 1 carries block time forward)."""
import time
from pathlib import Path

from eth_account import Account
from web3 import Web3

from fee_plugin.artifact import vault_abi

from .node_process import NodeProcess, write_genesis

ETHER = 10**18
USER = Account.from_key(b"\x01" * 32)  # funded in the example genesis
OTHER = Account.from_key(b"\x03" * 32)
VALIDITY_SECONDS = 20
WAIT_SECONDS = 60


def scripted_genesis(path: Path) -> Path:
    return write_genesis(path, lotValiditySeconds=VALIDITY_SECONDS, initialReleaseBps=5000,
                         lowBalance=str(ETHER // 2))


def send(w3, account, **tx):
    tx = {"chainId": 1337, "nonce": w3.eth.get_transaction_count(account.address, "pending"),
          "maxFeePerGas": 3 * 10**9, "maxPriorityFeePerGas": 10**9, "gas": 21_000, **tx}
    tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=WAIT_SECONDS)


def deposit(w3, account, value):
    vault = w3.eth.contract(address=Web3.to_checksum_address("0x000000000000000000000000000000000000fee0"),
                            abi=vault_abi())
    return send(w3, account, to=vault.address, value=value, data=vault.encode_abi("deposit", []), gas=300_000)


def start_scripted_node(tmp: Path, extra=()) -> NodeProcess:
    return NodeProcess(scripted_genesis(tmp / "genesis.json"), tmp / "data", ["--block-time", "1", *extra])


def script_history(node: NodeProcess) -> None:
    """USER: two deposits (two lots) and three charges; OTHER: one deposit left to expire."""
    w3 = node.w3
    deposit(w3, USER, ETHER)
    deposit(w3, OTHER, ETHER // 100)
    for _ in range(2):
        send(w3, USER, to=OTHER.address, value=1)
    deposit(w3, USER, 2 * ETHER)
    send(w3, USER, to=OTHER.address, value=1)


def wait_for_head_time(node: NodeProcess, timestamp: int, timeout: float = WAIT_SECONDS) -> None:
    """Wait (bounded) until the head block's time reaches `timestamp`."""
    deadline = time.monotonic() + timeout
    while node.w3.eth.get_block("latest")["timestamp"] < timestamp:
        if time.monotonic() > deadline:
            raise AssertionError(f"head did not reach block time {timestamp}")
        time.sleep(0.2)
