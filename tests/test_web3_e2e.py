"""web3.py against a real `fee-node run`, as a Python dapp developer would use it: deposit,
deploy an OpenZeppelin ERC-20 with defaults, transfer, decode the vault's events, polling
filters over HTTP, AsyncWeb3 WebSocket subscriptions, concurrent sends, decoded reverts,
and the fee refusal with its text and data."""
import asyncio
import threading

import pytest
from eth_account import Account
from web3 import AsyncWeb3, Web3, WebSocketProvider
from web3.exceptions import ContractCustomError, ContractLogicError, ContractPanicError, Web3RPCError
from web3.logs import DISCARD
from web3.utils.subscriptions import LogsSubscription, NewHeadsSubscription, PendingTxSubscription

from fee_plugin.artifact import vault_abi

from .support.chain import ETHER
from .support.node_process import NodeProcess, write_genesis
from .support.token import token_artifact

pytestmark = pytest.mark.slow

DEV = Account.from_key(b"\x01" * 32)  # funded in the example genesis
NEWCOMER = Account.from_key(b"\x03" * 32)  # funded, never deposits
SENDERS = [Account.from_key(bytes([0x20 + i]) * 32) for i in range(2)]
VAULT = Web3.to_checksum_address("0x000000000000000000000000000000000000fee0")
RECEIPT_TIMEOUT = 30
SUBSCRIPTION_TIMEOUT = 30


def send(w3, account, tx, nonce=None):
    """Sign and send with web3.py's defaults (gas estimated, EIP-1559 fees filled); the receipt."""
    tx = {"from": account.address, "chainId": w3.eth.chain_id, **tx}
    tx["nonce"] = w3.eth.get_transaction_count(account.address, "pending") if nonce is None else nonce
    if "gas" not in tx:
        tx["gas"] = w3.eth.estimate_gas(tx)
    tx.setdefault("maxPriorityFeePerGas", w3.eth.max_priority_fee)
    tx.setdefault("maxFeePerGas", 2 * w3.eth.get_block("latest")["baseFeePerGas"] + tx["maxPriorityFeePerGas"])
    tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT, poll_latency=0.1)


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    alloc = {a.address: 10 * ETHER for a in SENDERS}
    running = NodeProcess(write_genesis(tmp_path_factory.mktemp("web3") / "genesis.json", alloc=alloc))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def vault(node):
    return node.w3.eth.contract(address=VAULT, abi=vault_abi())


@pytest.fixture(scope="module")
def token(node, vault):
    """DEV deposits 1 ether (paid natively, the bootstrap) and deploys the ERC-20."""
    w3 = node.w3
    data = vault.encode_abi("deposit", [])
    assert send(w3, DEV, {"to": VAULT, "value": ETHER, "data": data}).status == 1
    artifact = token_artifact()
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    deploy = factory.constructor(10**6 * ETHER).build_transaction({"from": DEV.address, "nonce": 0})
    receipt = send(w3, DEV, {"data": deploy["data"]})
    assert receipt.status == 1 and receipt.contractAddress
    return w3.eth.contract(address=receipt.contractAddress, abi=artifact["abi"])


def test_deploy_and_transfer_are_lot_paid_with_decoded_vault_events(node, vault, token):
    w3 = node.w3
    account = w3.provider.make_request("fee_getAccount", [DEV.address])["result"]
    assert account["status"] == "ACTIVE" and int(account["charged"]) > 0  # the deploy paid from the lot
    before = w3.eth.get_balance(DEV.address)
    receipt = send(w3, DEV, {"to": token.address, "data": token.encode_abi("transfer", [NEWCOMER.address, 5])})
    assert receipt.status == 1 and w3.eth.get_balance(DEV.address) == before  # gas from the lot
    (charged,) = vault.events.FeeCharged().process_receipt(receipt, errors=DISCARD)
    lots = vault.events.LotCharged().process_receipt(receipt, errors=DISCARD)
    assert charged.args.payer == DEV.address
    assert charged.args.fee == receipt.gasUsed * receipt.effectiveGasPrice == sum(e.args.amount for e in lots)
    assert token.functions.balanceOf(NEWCOMER.address).call() >= 5


def test_polling_filters_over_http(node, token):
    w3 = node.w3
    transfers = token.events.Transfer.create_filter(from_block="latest")
    blocks = w3.eth.filter("latest")
    pending = w3.eth.filter("pending")
    receipt = send(w3, DEV, {"to": token.address, "data": token.encode_abi("transfer", [NEWCOMER.address, 7])})
    (event,) = transfers.get_new_entries()
    assert (event.args.to, event.args.value, event.transactionHash) == (NEWCOMER.address, 7, receipt.transactionHash)
    assert transfers.get_new_entries() == []  # changes are delivered once
    assert receipt.blockHash in blocks.get_new_entries()
    assert receipt.transactionHash in pending.get_new_entries()
    every = token.events.Transfer.create_filter(from_block=0, argument_filters={"to": NEWCOMER.address})
    assert [e.args.value for e in every.get_all_entries()][-1] == 7  # eth_getFilterLogs
    assert all(w3.eth.uninstall_filter(f.filter_id) for f in (transfers, blocks, pending, every))
    assert not w3.eth.uninstall_filter(transfers.filter_id)


def test_async_websocket_subscriptions(node, token):
    async def scenario():
        heard = {"heads": [], "logs": [], "pending": []}
        done = asyncio.Event()

        async def record(kind, context):
            heard[kind].append(context.result)
            if all(heard.values()):
                done.set()

        url = node.url.replace("http://", "ws://")
        async with AsyncWeb3(WebSocketProvider(url)) as w3:
            assert await w3.eth.chain_id == 1337
            await w3.subscription_manager.subscribe([
                NewHeadsSubscription(handler=lambda c: record("heads", c)),
                LogsSubscription(address=token.address, handler=lambda c: record("logs", c)),
                PendingTxSubscription(handler=lambda c: record("pending", c)),
            ])
            runner = asyncio.create_task(w3.subscription_manager.handle_subscriptions())
            data = token.encode_abi("transfer", [NEWCOMER.address, 11])
            receipt = await asyncio.to_thread(send, node.w3, DEV, {"to": token.address, "data": data})
            await asyncio.wait_for(done.wait(), SUBSCRIPTION_TIMEOUT)
            assert await w3.subscription_manager.unsubscribe_all()
            await asyncio.wait_for(runner, SUBSCRIPTION_TIMEOUT)
        return receipt, heard

    receipt, heard = asyncio.run(scenario())
    assert receipt.blockHash in [h["hash"] for h in heard["heads"]]
    assert heard["logs"][0]["transactionHash"] == receipt.transactionHash
    assert receipt.transactionHash in heard["pending"]


def test_twenty_concurrent_sends_are_all_mined(node, token):
    w3 = node.w3
    data = token.encode_abi("transfer", [NEWCOMER.address, 1])
    start = w3.eth.get_transaction_count(DEV.address, "pending")
    receipts, errors = [], []

    def one(i):
        try:
            receipts.append(send(w3, DEV, {"to": token.address, "data": data, "gas": 100_000}, nonce=start + i))
        except Exception as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(RECEIPT_TIMEOUT + 10)
    assert errors == [] and len(receipts) == 20 and all(r.status == 1 for r in receipts)


def test_reverts_carry_their_data_and_decoded_reasons(node, token):
    stranger = Account.create().address
    for call in (token.functions.transfer(DEV.address, 1).call, token.functions.transfer(DEV.address, 1).estimate_gas):
        with pytest.raises(ContractCustomError) as err:
            call({"from": stranger})
        selector = Web3.keccak(text="ERC20InsufficientBalance(address,uint256,uint256)")[:4]
        assert err.value.data.startswith("0x" + selector.hex())
    with pytest.raises(ContractLogicError, match="execution reverted: x must be positive"):
        token.functions.mustBePositive(0).call()
    with pytest.raises(ContractPanicError, match="Division by zero"):
        token.functions.divide(1, 0).call()
    reply = node.rpc("eth_call", {"to": token.address, "data": token.encode_abi("divide", [1, 0])}, "latest")
    assert reply["error"]["code"] == 3 and reply["error"]["message"] == "execution reverted: division or modulo by zero"
    assert reply["error"]["data"].endswith("12")


def test_fee_refusal_has_its_text_and_numbers(node):
    w3 = node.w3
    with pytest.raises(Web3RPCError) as err:
        send(w3, NEWCOMER, {"to": DEV.address, "value": 1, "gas": 21_000})
    error = err.value.rpc_response["error"]
    assert error["code"] == -32000 and error["message"].startswith("insufficient funds for gas: ")
    assert "no fee account" in error["message"]
    assert error["data"] == {"available": "0", "required": str(21_000 * error_fee(w3)), "releasedAt": None}


def error_fee(w3):
    return 2 * w3.eth.get_block("latest")["baseFeePerGas"] + w3.eth.max_priority_fee
