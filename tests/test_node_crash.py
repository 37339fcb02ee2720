"""Nothing accepted is lost: SIGKILL a `fee-node run --datadir` with transactions whose
hashes were returned but not yet mined; after a restart every one of them is mined, once."""
import os
import random
import signal
import threading

import pytest
from eth_account import Account
from web3 import HTTPProvider, Web3
from web3.exceptions import Web3RPCError

from .support.chain import ETHER
from .support.node_process import NodeProcess, write_genesis

pytestmark = pytest.mark.slow

SENDERS = [Account.from_key(bytes([0x40 + i]) * 32) for i in range(4)]
RECEIPT_TIMEOUT = 60


@pytest.fixture
def genesis(tmp_path):
    # noAccount native: plain transfers pay the Ethereum way, no deposit needed first
    return write_genesis(tmp_path / "genesis.json", alloc={a.address: 10 * ETHER for a in SENDERS},
                         noAccount="native")


def _signed(account, nonce, chain_id=1337):
    return account.sign_transaction({
        "chainId": chain_id, "nonce": nonce, "to": "0x" + "42" * 20, "value": 1, "gas": 21_000,
        "maxFeePerGas": 2 * 10**9, "maxPriorityFeePerGas": 10**9}).raw_transaction


def _mined_hashes(w3):
    seen = []
    for number in range(1, w3.eth.block_number + 1):
        seen.extend(tx.hex() if isinstance(tx, bytes) else tx for tx in w3.eth.get_block(number)["transactions"])
    return ["0x" + h.removeprefix("0x") for h in seen]


def test_pending_transactions_survive_sigkill_and_are_mined_after_restart(genesis, tmp_path):
    datadir = tmp_path / "data"
    node = NodeProcess(genesis, datadir, ["--block-time", "3600"])  # nothing is sealed for an hour
    accepted = []
    for account in SENDERS:
        for nonce in range(10):
            accepted.append(node.w3.eth.send_raw_transaction(_signed(account, nonce)).to_0x_hex())
    head = node.w3.eth.block_number
    node.kill()
    node = NodeProcess(genesis, datadir)  # automine
    try:
        for tx_hash in accepted:
            assert node.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT).status == 1
        mined = _mined_hashes(node.w3)
        assert sorted(mined) == sorted(set(mined)) and set(accepted) <= set(mined)
        assert node.w3.eth.block_number > head
    finally:
        assert node.stop() == 0


def test_kills_under_load_lose_no_accepted_transaction(genesis, tmp_path):
    """Five SIGKILLs at random moments while four clients send: every hash ever returned
    is mined exactly once in the end (seeded, so the kill points are reproducible)."""
    rng = random.Random(7)
    datadir = tmp_path / "data"
    accepted = []
    for _ in range(5):
        node = NodeProcess(genesis, datadir)
        stop = threading.Event()
        sent = threading.Semaphore(0)

        def client(account, url=node.url):
            w3 = Web3(HTTPProvider(url, request_kwargs={"timeout": 10}))
            nonce = w3.eth.get_transaction_count(account.address, "pending")
            while not stop.is_set():
                try:
                    accepted.append(w3.eth.send_raw_transaction(_signed(account, nonce)).to_0x_hex())
                except (Web3RPCError, OSError, ValueError):
                    return  # the node died under us: nothing was returned for this one
                except Exception:  # requests' connection errors when killed mid-request
                    return
                nonce += 1
                sent.release()

        threads = [threading.Thread(target=client, args=(a,)) for a in SENDERS]
        for t in threads:
            t.start()
        for _ in range(rng.randint(5, 60)):  # kill after a random number of accepted sends
            assert sent.acquire(timeout=30)
        node.kill()
        stop.set()
        for t in threads:
            t.join(30)
    node = NodeProcess(genesis, datadir)
    try:
        for tx_hash in accepted:
            assert node.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT).status == 1
        mined = _mined_hashes(node.w3)
        assert len(mined) == len(set(mined)) and set(accepted) <= set(mined)
    finally:
        assert node.stop() == 0


def _children(pid):
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            found += [int(c) for c in f.read().split()]
    return found


def test_a_killed_builder_process_is_replaced_and_every_transaction_mined(genesis, tmp_path):
    """`fee-node run` builds in a child process by default: SIGKILL it twice while clients
    send; the node starts a new one and mines every accepted transaction once."""
    node = NodeProcess(genesis, tmp_path / "data")
    try:
        accepted, killed = [], []
        for round_ in range(3):
            for account in SENDERS:
                nonce = node.w3.eth.get_transaction_count(account.address, "pending")
                for n in range(nonce, nonce + 5):
                    accepted.append(node.w3.eth.send_raw_transaction(_signed(account, n)).to_0x_hex())
            if round_ < 2:
                # a block after the last kill: the dead child was reaped, a new one built it
                node.w3.eth.wait_for_transaction_receipt(accepted[-1], timeout=RECEIPT_TIMEOUT)
                (child,) = _children(node.pid)
                assert child not in killed
                os.kill(child, signal.SIGKILL)
                killed.append(child)
                for account in SENDERS:  # sent while no builder process is alive
                    nonce = node.w3.eth.get_transaction_count(account.address, "pending")
                    accepted.append(node.w3.eth.send_raw_transaction(_signed(account, nonce)).to_0x_hex())
        for tx_hash in accepted:
            assert node.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT).status == 1
        mined = _mined_hashes(node.w3)
        assert len(mined) == len(set(mined)) and set(accepted) <= set(mined)
        assert len(_children(node.pid)) == 1 and not set(_children(node.pid)) & set(killed)
        noticed = [line for line in node.lines if "builder process exited" in line
                   or "the builder process failed" in line]
        assert len(noticed) == 2, node.lines
    finally:
        assert node.stop() == 0
