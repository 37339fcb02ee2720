"""End to end: a real `fee-node run` subprocess on a free loopback port, driven by web3.py."""

import json

import pytest
from eth_account import Account
from web3 import Web3
from web3.exceptions import Web3RPCError
from web3.logs import DISCARD

from fee_plugin.artifact import vault_abi

from .support.chain import ETHER, EXAMPLE_GENESIS
from .support.node_process import NodeProcess
from .support.node_process import write_genesis as support_genesis

pytestmark = pytest.mark.slow

USER = Account.from_key(b"\x01" * 32)  # funded in the test genesis
STRANGER = Account.from_key(b"\x07" * 32)  # funded, never deposits
# init code that deploys a contract returning 42 for any call
INIT_CODE = "0x600a600c600039600a6000f3602a60005260206000f3"


def write_genesis(tmp_path, **fee_overrides):
    return support_genesis(tmp_path / "genesis.json", alloc={STRANGER.address: 10 * ETHER}, **fee_overrides)


@pytest.fixture
def node(tmp_path):
    running = NodeProcess(write_genesis(tmp_path, consumption="upfront"))
    yield running
    running.stop()


def send(w3, account, tx):
    tx = {"chainId": w3.eth.chain_id, "nonce": w3.eth.get_transaction_count(account.address),
          "maxFeePerGas": 3 * 10**9, "maxPriorityFeePerGas": 10**9, **tx}
    if "gas" not in tx:
        tx["gas"] = w3.eth.estimate_gas({k: v for k, v in tx.items() if k in ("from", "to", "value", "data")} | {"from": account.address})
    tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)


def vault(w3):
    genesis = json.loads(EXAMPLE_GENESIS.read_text())
    return w3.eth.contract(address=Web3.to_checksum_address(genesis["config"]["feePlugin"]["vault"]), abi=vault_abi())


def deposit(w3, account, value=ETHER):
    contract = vault(w3)
    data = contract.encode_abi("deposit", [])
    return send(w3, account, {"to": contract.address, "value": value, "data": data, "gas": 300_000})


def test_chain_facts_over_json_rpc(node):
    w3 = node.w3
    assert w3.eth.chain_id == 1337
    assert w3.net.version == "1337"
    assert w3.eth.block_number == 0
    assert w3.eth.get_balance(USER.address) == 1000 * ETHER
    assert w3.client_version.startswith("fee-node/")
    assert w3.eth.get_block("latest")["number"] == 0


def test_deposit_then_lot_paid_transfer_with_decoded_fee_logs(node):
    w3 = node.w3
    receipt = deposit(w3, USER)
    assert receipt.status == 1
    (lot,) = vault(w3).events.LotDeposited().process_receipt(receipt, errors=DISCARD)
    assert lot.args.amount == ETHER
    before = w3.eth.get_balance(USER.address)
    receipt = send(w3, USER, {"to": STRANGER.address, "value": 5, "gas": 21_000})
    assert receipt.status == 1
    assert w3.eth.get_balance(USER.address) == before - 5  # gas came from the lot
    (charged,) = vault(w3).events.FeeCharged().process_receipt(receipt, errors=DISCARD)
    assert charged.args.payer == USER.address
    assert charged.args.fee == receipt.gasUsed * receipt.effectiveGasPrice
    account = w3.provider.make_request("fee_getAccount", [USER.address])["result"]
    assert int(account["charged"]) == charged.args.fee and account["status"] in ("ACTIVE", "LOW")


def test_contract_deployment_is_lot_paid(node):
    w3 = node.w3
    deposit(w3, USER)
    receipt = send(w3, USER, {"data": INIT_CODE, "gas": 100_000})
    assert receipt.status == 1 and receipt.contractAddress
    assert w3.eth.get_code(receipt.contractAddress) != b""
    assert w3.eth.call({"to": receipt.contractAddress})[-1] == 42
    assert vault(w3).events.FeeCharged().process_receipt(receipt, errors=DISCARD)


def test_get_logs_filters_by_address_and_topic(node):
    w3 = node.w3
    deposit(w3, USER)
    send(w3, USER, {"to": STRANGER.address, "value": 1, "gas": 21_000})
    contract = vault(w3)
    topic = contract.events.FeeCharged().topic
    logs = w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest", "address": contract.address, "topics": [topic]})
    assert len(logs) == 1
    assert contract.events.FeeCharged().process_log(logs[0]).args.payer == USER.address
    assert w3.eth.get_logs({"fromBlock": 0, "address": STRANGER.address}) == []


def test_rejections_say_why(node):
    w3 = node.w3
    with pytest.raises(Web3RPCError, match="insufficient funds for gas.*no fee account"):
        send(w3, STRANGER, {"to": USER.address, "value": 1, "gas": 21_000})
    deposit(w3, USER, value=10**15)
    with pytest.raises(Web3RPCError, match=r"insufficient funds for gas.*available \d+ wei < required \d+ wei"):
        send(w3, USER, {"to": STRANGER.address, "value": 1, "gas": 10_000_000})


def test_malformed_requests_get_json_rpc_errors(node):
    import urllib.request

    def post(body):
        request = urllib.request.Request(node.url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    assert post(b"{not json")["error"]["code"] == -32700
    assert post(b'{"jsonrpc": "2.0", "id": 1}')["error"]["code"] == -32600
    assert post(b'{"jsonrpc": "2.0", "id": 1, "method": "eth_nope", "params": []}')["error"]["code"] == -32601
    assert post(b'{"jsonrpc": "2.0", "id": 1, "method": "eth_getBalance", "params": ["0x12"]}')["error"]["code"] == -32602
    with pytest.raises(urllib.error.HTTPError) as err:
        post(b"[" + b"1," * (5 << 20) + b"1]")
    assert err.value.code == 413
    assert node.w3.eth.block_number == 0  # still serving


def test_restart_with_datadir_keeps_state_and_history(tmp_path):
    genesis = write_genesis(tmp_path, consumption="upfront")
    datadir = tmp_path / "data"
    first = NodeProcess(genesis, datadir)
    try:
        deposit(first.w3, USER)
        send(first.w3, USER, {"to": STRANGER.address, "value": 1, "gas": 21_000})
        head = first.w3.eth.get_block("latest")  # automine may add an empty trailing block later
        at = hex(head["number"])
        account = first.w3.provider.make_request("fee_getAccount", [USER.address, at])["result"]
        history = first.w3.provider.make_request("fee_getHistory", [USER.address, "0x0", at])["result"]
    finally:
        first.stop()
    second = NodeProcess(genesis, datadir)
    try:
        assert second.w3.eth.get_block(head["number"]) == head
        assert second.w3.eth.block_number >= head["number"]
        assert second.w3.provider.make_request("fee_getAccount", [USER.address, at])["result"] == account
        again = second.w3.provider.make_request("fee_getHistory", [USER.address, "0x0", at])["result"]
        assert again == history and {e["event"] for e in history} >= {"LotDeposited", "FeeCharged"}
    finally:
        second.stop()
