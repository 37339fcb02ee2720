"""A scripted fee history on a real node: deposits, lot-paid charges, and an expiry (an
operator's short grant that lapses unused and is swept by the account's next charge, a
LotExpired row); --block-time 1 carries block time forward."""
import time
from pathlib import Path

from eth_account import Account
from web3 import Web3

from fee_plugin.artifact import vault_abi

from .chain import ETHER
from .node_process import NodeProcess, write_genesis

USER = Account.from_key(b"\x01" * 32)  # funded in the example genesis
OTHER = Account.from_key(b"\x03" * 32)  # funded in the example genesis
OPERATOR = Account.from_key(b"\x02" * 32)  # the example genesis's operator, funded
VAULT = Web3.to_checksum_address("0x000000000000000000000000000000000000fee0")
VALIDITY_SECONDS = 60  # deposits outlive a test session: only release moves them meanwhile
GRANT_VALIDITY_SECONDS = 3  # the grant that expires within the scripted history
GRANT_WEI = ETHER // 10
DEAR_GAS_PRICE = 10**13  # 10,000 gwei: a 21,000-gas charge of 0.21 ETH, visible on a 1 ETH lot's chart
WAIT_SECONDS = 60


def scripted_genesis(path: Path) -> Path:
    return write_genesis(path, lotValiditySeconds=VALIDITY_SECONDS, initialReleaseBps=5000,
                         lowBalance=str(ETHER // 2))


def send(w3, account, **tx):
    tx = {"chainId": 1337, "nonce": w3.eth.get_transaction_count(account.address, "pending"),
          "maxFeePerGas": 3 * 10**9, "maxPriorityFeePerGas": 10**9, "gas": 21_000, **tx}
    tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=WAIT_SECONDS)


def vault_contract(w3):
    return w3.eth.contract(address=VAULT, abi=vault_abi())


def deposit(w3, account, value):
    vault = vault_contract(w3)
    return send(w3, account, to=vault.address, value=value, data=vault.encode_abi("deposit", []), gas=300_000)


def grant(w3, owner, value, validity_seconds):
    """The operator issues `owner` a lot of `value` wei with its own validity (`owner` need
    not hold any ether nor ever send a transaction)."""
    vault = vault_contract(w3)
    return send(w3, OPERATOR, to=vault.address, value=value,
                data=vault.encode_abi("grant", [owner.address, validity_seconds]), gas=300_000)


def start_scripted_node(tmp: Path, extra=()) -> NodeProcess:
    return NodeProcess(scripted_genesis(tmp / "genesis.json"), tmp / "data", ["--block-time", "1", *extra])


def script_history(node: NodeProcess) -> None:
    """USER: two deposits (lots 0 and 1), three charges (the first two dear), then the
    operator's grant of GRANT_WEI valid GRANT_VALIDITY_SECONDS (lot 2), which lapses unused
    and is swept by USER's fourth charge (LotExpired, GRANT_WEI to the treasury); OTHER: one
    deposit, left to expire by time alone."""
    w3 = node.w3
    deposit(w3, USER, ETHER)
    deposit(w3, OTHER, ETHER // 100)
    for _ in range(2):
        send(w3, USER, to=OTHER.address, value=1, maxFeePerGas=DEAR_GAS_PRICE, maxPriorityFeePerGas=DEAR_GAS_PRICE)
    deposit(w3, USER, 2 * ETHER)
    send(w3, USER, to=OTHER.address, value=1)
    granted = grant(w3, USER, GRANT_WEI, GRANT_VALIDITY_SECONDS)
    wait_for_head_time(node, w3.eth.get_block(granted["blockNumber"])["timestamp"] + GRANT_VALIDITY_SECONDS)
    send(w3, USER, to=OTHER.address, value=1)  # sweeps the lapsed grant first, then pays


def wait_for_head_time(node: NodeProcess, timestamp: int, timeout: float = WAIT_SECONDS) -> None:
    """Wait (bounded) until the head block's time reaches `timestamp`."""
    deadline = time.monotonic() + timeout
    while node.w3.eth.get_block("latest")["timestamp"] < timestamp:
        if time.monotonic() > deadline:
            raise AssertionError(f"head did not reach block time {timestamp}")
        time.sleep(0.2)
