"""Ethereum JSON-RPC over a Node: the methods a wallet and web3.py need, plus fee_*.

Hand-written and thin on purpose: each method maps onto py-evm's chain API or our queries.
eth-tester's backend builds its own chain from its own genesis, stamps calls with the wall
clock and keeps no database of ours, so reusing it would fight persistence and the
"latest"-means-the-head semantics this chain needs (README, "Run a node").
"""
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Tuple

import rlp
from eth._utils.address import generate_contract_address
from eth.abc import BlockAPI, BlockHeaderAPI, ReceiptAPI, SignedTransactionAPI
from eth.exceptions import BlockNotFound, HeaderNotFound, TransactionNotFound
from eth_utils import (
    decode_hex,
    encode_hex,
    is_hex,
    to_canonical_address,
    to_checksum_address,
)

from .history import account_history
from .node import Node, TransactionRejected
from .query import call_latest, fee_account

MAX_BODY_BYTES = 1 << 20  # 1 MiB: a larger request is refused before it is parsed
MAX_BATCH = 100
MAX_LOG_RANGE = 10_000  # blocks per eth_getLogs / fee_getHistory request
CLIENT_VERSION = "fee-node/0.1.0/py-evm"
DEFAULT_PRIORITY_FEE = 10**9

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR = (
    -32700, -32600, -32601, -32602, -32603,
)
SERVER_ERROR = -32000  # geth's code for rejected transactions
EXECUTION_REVERTED = 3


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data

    def as_json(self) -> Dict[str, Any]:
        error = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


# -- parameter parsing -------------------------------------------------------------------


def _quantity(value: Any, name: str) -> int:
    if isinstance(value, str) and value.startswith("0x") and is_hex(value) and len(value) > 2:
        return int(value, 16)
    raise RpcError(INVALID_PARAMS, f"{name}: expected a 0x-hex quantity, got {value!r}")


def _data(value: Any, name: str) -> bytes:
    if isinstance(value, str) and value.startswith("0x") and (value == "0x" or is_hex(value)) and len(value) % 2 == 0:
        return decode_hex(value)
    raise RpcError(INVALID_PARAMS, f"{name}: expected 0x-hex data, got {value!r}")


def _address(value: Any, name: str) -> bytes:
    if isinstance(value, str) and len(value) == 42 and value.startswith("0x") and is_hex(value):
        return to_canonical_address(value)
    raise RpcError(INVALID_PARAMS, f"{name}: expected a 20-byte 0x address, got {value!r}")


def _hash(value: Any, name: str) -> bytes:
    data = _data(value, name)
    if len(data) != 32:
        raise RpcError(INVALID_PARAMS, f"{name}: expected a 32-byte hash")
    return data


def _params(params: Any, minimum: int, maximum: int) -> List[Any]:
    params = [] if params is None else params
    if not isinstance(params, list) or not minimum <= len(params) <= maximum:
        raise RpcError(INVALID_PARAMS, f"expected {minimum}..{maximum} positional params")
    return params + [None] * (maximum - len(params))


def _hex(value: int) -> str:
    return hex(value)


# -- JSON shapes -------------------------------------------------------------------------


def _block_json(block: BlockAPI, full: bool) -> Dict[str, Any]:
    h = block.header
    result = {
        "number": _hex(h.block_number),
        "hash": encode_hex(h.hash),
        "parentHash": encode_hex(h.parent_hash),
        "nonce": encode_hex(h.nonce),
        "mixHash": encode_hex(h.mix_hash),
        "sha3Uncles": encode_hex(h.uncles_hash),
        "logsBloom": encode_hex(h.bloom.to_bytes(256, "big")),
        "transactionsRoot": encode_hex(h.transaction_root),
        "stateRoot": encode_hex(h.state_root),
        "receiptsRoot": encode_hex(h.receipt_root),
        "miner": to_checksum_address(h.coinbase),
        "difficulty": _hex(h.difficulty),
        "totalDifficulty": _hex(h.difficulty),
        "extraData": encode_hex(h.extra_data),
        "size": _hex(len(rlp.encode(block))),
        "gasLimit": _hex(h.gas_limit),
        "gasUsed": _hex(h.gas_used),
        "timestamp": _hex(h.timestamp),
        "baseFeePerGas": _hex(h.base_fee_per_gas),
        "uncles": [],
        "withdrawals": [],
        "withdrawalsRoot": encode_hex(h.withdrawals_root),
        "blobGasUsed": _hex(h.blob_gas_used),
        "excessBlobGas": _hex(h.excess_blob_gas),
        "parentBeaconBlockRoot": encode_hex(h.parent_beacon_block_root),
    }
    if hasattr(h, "requests_hash"):
        result["requestsHash"] = encode_hex(h.requests_hash)
    result["transactions"] = [
        _transaction_json(tx, h, i) if full else encode_hex(tx.hash)
        for i, tx in enumerate(block.transactions)
    ]
    return result


def _transaction_json(tx: SignedTransactionAPI, header: Optional[BlockHeaderAPI], index: Optional[int]) -> Dict[str, Any]:
    result = {
        "hash": encode_hex(tx.hash),
        "type": _hex(tx.type_id or 0),
        "nonce": _hex(tx.nonce),
        "from": to_checksum_address(tx.sender),
        "to": to_checksum_address(tx.to) if tx.to else None,
        "value": _hex(tx.value),
        "gas": _hex(tx.gas),
        "input": encode_hex(tx.data),
        "r": _hex(tx.r),
        "s": _hex(tx.s),
        "v": _hex(tx.v if tx.type_id is None else tx.y_parity),
        "blockHash": encode_hex(header.hash) if header else None,
        "blockNumber": _hex(header.block_number) if header else None,
        "transactionIndex": _hex(index) if index is not None else None,
    }
    if tx.type_id is None or tx.type_id == 1:
        result["gasPrice"] = _hex(tx.gas_price)
    else:
        result["maxFeePerGas"] = _hex(tx.max_fee_per_gas)
        result["maxPriorityFeePerGas"] = _hex(tx.max_priority_fee_per_gas)
        base = header.base_fee_per_gas if header else 0
        result["gasPrice"] = _hex(min(tx.max_fee_per_gas, tx.max_priority_fee_per_gas + base))
    if tx.type_id is not None:
        result["chainId"] = _hex(tx.chain_id)
        result["yParity"] = _hex(tx.y_parity)
        result["accessList"] = [
            {"address": to_checksum_address(a), "storageKeys": [encode_hex(k.to_bytes(32, "big")) for k in keys]}
            for a, keys in tx.access_list
        ]
    elif tx.chain_id is not None:
        result["chainId"] = _hex(tx.chain_id)
    return result


def _log_json(log, header: BlockHeaderAPI, tx: SignedTransactionAPI, tx_index: int, log_index: int) -> Dict[str, Any]:
    return {
        "address": to_checksum_address(log.address),
        "topics": [encode_hex(t.to_bytes(32, "big")) for t in log.topics],
        "data": encode_hex(log.data),
        "blockNumber": _hex(header.block_number),
        "blockHash": encode_hex(header.hash),
        "transactionHash": encode_hex(tx.hash),
        "transactionIndex": _hex(tx_index),
        "logIndex": _hex(log_index),
        "removed": False,
    }


def _block_logs(block: BlockAPI, receipts: Tuple[ReceiptAPI, ...]):
    """(tx_index, tx, receipt, [(log_index, log)]) for every transaction, log indexes block-wide."""
    log_index = 0
    for tx_index, (tx, receipt) in enumerate(zip(block.transactions, receipts)):
        logs = []
        for log in receipt.logs:
            logs.append((log_index, log))
            log_index += 1
        yield tx_index, tx, receipt, logs


# -- the API -----------------------------------------------------------------------------


class RpcApi:
    """Method name → handler; every handler takes the JSON params list."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.methods: Dict[str, Callable[[List[Any]], Any]] = {
            name[4:].replace("__", "_"): getattr(self, name)
            for name in dir(self)
            if name.startswith("rpc_")
        }

    @property
    def chain(self):
        return self.node.chain  # the node may rebuild its chain after a dropped block

    # dispatch

    def handle(self, request: Any) -> Optional[Dict[str, Any]]:
        """One JSON-RPC request object → response object (None for notifications)."""
        if not isinstance(request, dict) or request.get("jsonrpc") != "2.0" or not isinstance(request.get("method"), str):
            return {"jsonrpc": "2.0", "id": None, "error": RpcError(INVALID_REQUEST, "invalid request").as_json()}
        request_id = request.get("id")
        try:
            method = self.methods.get(request["method"])
            if method is None:
                raise RpcError(METHOD_NOT_FOUND, f"method {request['method']!r} not found")
            params = request.get("params", [])
            if not isinstance(params, list):
                raise RpcError(INVALID_PARAMS, "params must be a list")
            with self.node.lock:
                result = method(params)
            response = {"jsonrpc": "2.0", "id": request_id, "result": result}
        except RpcError as err:
            response = {"jsonrpc": "2.0", "id": request_id, "error": err.as_json()}
        except Exception as err:  # never crash the server on one request
            response = {"jsonrpc": "2.0", "id": request_id,
                        "error": RpcError(INTERNAL_ERROR, f"internal error: {type(err).__name__}: {err}").as_json()}
        return None if "id" not in request else response

    def handle_body(self, body: bytes) -> Optional[bytes]:
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError) as err:
            error = RpcError(PARSE_ERROR, f"parse error: {err}").as_json()
            return json.dumps({"jsonrpc": "2.0", "id": None, "error": error}).encode()
        if isinstance(payload, list):
            if not payload or len(payload) > MAX_BATCH:
                error = RpcError(INVALID_REQUEST, f"batch must hold 1..{MAX_BATCH} requests").as_json()
                return json.dumps({"jsonrpc": "2.0", "id": None, "error": error}).encode()
            responses = [r for r in (self.handle(item) for item in payload) if r is not None]
            return json.dumps(responses).encode() if responses else None
        response = self.handle(payload)
        return json.dumps(response).encode() if response is not None else None

    # block selection

    def _header(self, tag: Any) -> BlockHeaderAPI:
        if tag is None or tag in ("latest", "safe", "finalized", "pending"):
            return self.chain.get_canonical_head()
        if tag == "earliest":
            return self.chain.get_canonical_block_header_by_number(0)
        if isinstance(tag, dict):
            if "blockHash" in tag:
                return self._header_by_hash(_hash(tag["blockHash"], "blockHash"))
            tag = tag.get("blockNumber")
        number = _quantity(tag, "block")
        try:
            return self.chain.get_canonical_block_header_by_number(number)
        except HeaderNotFound:
            raise RpcError(INVALID_PARAMS, f"block {number} not found (head is {self.chain.get_canonical_head().block_number})") from None

    def _header_by_hash(self, block_hash: bytes) -> BlockHeaderAPI:
        try:
            return self.chain.get_block_header_by_hash(block_hash)
        except HeaderNotFound:
            raise RpcError(INVALID_PARAMS, f"block {encode_hex(block_hash)} not found") from None

    def _state(self, tag: Any):
        header = self._header(tag)
        vm = self.chain.get_vm(header)
        return vm.build_state(self.chain.chaindb.db, header, vm.chain_context, vm.previous_hashes)

    # chain facts

    def rpc_web3__clientVersion(self, params):
        return CLIENT_VERSION

    def rpc_eth_chainId(self, params):
        return _hex(self.node.genesis.chain_id)

    def rpc_net_version(self, params):
        return str(self.node.genesis.chain_id)

    def rpc_eth_blockNumber(self, params):
        return _hex(self.chain.get_canonical_head().block_number)

    def rpc_eth_gasPrice(self, params):
        return _hex(self.chain.get_canonical_head().base_fee_per_gas + DEFAULT_PRIORITY_FEE)

    def rpc_eth_maxPriorityFeePerGas(self, params):
        return _hex(DEFAULT_PRIORITY_FEE)

    def rpc_eth_syncing(self, params):
        return False

    def rpc_eth_accounts(self, params):
        return []

    # state

    def rpc_eth_getBalance(self, params):
        address, tag = _params(params, 1, 2)
        return _hex(self._state(tag).get_balance(_address(address, "address")))

    def rpc_eth_getTransactionCount(self, params):
        address, tag = _params(params, 1, 2)
        address = _address(address, "address")
        if tag == "pending":
            return _hex(self.chain.get_vm().state.get_nonce(address))
        return _hex(self._state(tag).get_nonce(address))

    def rpc_eth_getCode(self, params):
        address, tag = _params(params, 1, 2)
        return encode_hex(self._state(tag).get_code(_address(address, "address")))

    def rpc_eth_getStorageAt(self, params):
        address, slot, tag = _params(params, 2, 3)
        value = self._state(tag).get_storage(_address(address, "address"), _quantity(slot, "slot"))
        return encode_hex(value.to_bytes(32, "big"))

    # calls

    def _call(self, params) -> Any:
        call, tag = _params(params, 1, 2)
        if not isinstance(call, dict):
            raise RpcError(INVALID_PARAMS, "call: expected a transaction object")
        header = self._header(tag)
        sender = _address(call["from"], "from") if call.get("from") else b"\x00" * 20
        to = _address(call["to"], "to") if call.get("to") else b""
        data = _data(call.get("data", call.get("input", "0x")), "data")
        gas = _quantity(call["gas"], "gas") if call.get("gas") else header.gas_limit
        value = _quantity(call["value"], "value") if call.get("value") else 0
        return header, sender, to, data, gas, value

    def rpc_eth_call(self, params):
        header, sender, to, data, gas, value = self._call(params)
        computation = call_latest(self.chain, to, data, sender=sender, gas=gas, header=header, value=value)
        if computation.is_error:
            raise RpcError(EXECUTION_REVERTED, f"execution reverted: {computation.error}",
                           encode_hex(computation.output) if computation.output else None)
        return encode_hex(computation.output)

    def rpc_eth_estimateGas(self, params):
        header, sender, to, data, gas_cap, value = self._call(params)

        def fails(gas: int) -> bool:
            return call_latest(self.chain, to, data, sender=sender, gas=gas, header=header, value=value).is_error

        if fails(gas_cap):
            computation = call_latest(self.chain, to, data, sender=sender, gas=gas_cap, header=header, value=value)
            raise RpcError(EXECUTION_REVERTED, f"execution reverted: {computation.error}")
        low, high = 21_000, gas_cap
        while low < high:
            mid = (low + high) // 2
            if fails(mid):
                low = mid + 1
            else:
                high = mid
        return _hex(low)

    # transactions

    def rpc_eth_sendRawTransaction(self, params):
        (raw,) = _params(params, 1, 1)
        tx = self.node.decode_transaction(_data(raw, "data"))
        try:
            return encode_hex(self.node.send_transaction(tx))
        except TransactionRejected as err:
            raise RpcError(SERVER_ERROR, str(err)) from None

    def _locate(self, tx_hash: bytes):
        try:
            number, index = self.chain.chaindb.get_transaction_index(tx_hash)
        except TransactionNotFound:
            return None
        block = self.chain.get_canonical_block_by_number(number)
        return block, index

    def rpc_eth_getTransactionByHash(self, params):
        (tx_hash,) = _params(params, 1, 1)
        found = self._locate(_hash(tx_hash, "hash"))
        if found is None:
            pending = [tx for tx in self.node.pending_transactions if tx.hash == decode_hex(tx_hash)]
            return _transaction_json(pending[0], None, None) if pending else None
        block, index = found
        return _transaction_json(block.transactions[index], block.header, index)

    def rpc_eth_getTransactionReceipt(self, params):
        (tx_hash,) = _params(params, 1, 1)
        found = self._locate(_hash(tx_hash, "hash"))
        if found is None:
            return None
        block, index = found
        receipts = block.get_receipts(self.chain.chaindb)
        for tx_index, tx, receipt, logs in _block_logs(block, receipts):
            if tx_index == index:
                break
        previous = receipts[index - 1].gas_used if index else 0
        base = block.header.base_fee_per_gas
        price = min(tx.max_fee_per_gas, tx.max_priority_fee_per_gas + base)
        contract = None
        if not tx.to:
            contract = to_checksum_address(generate_contract_address(tx.sender, tx.nonce))
        return {
            "transactionHash": encode_hex(tx.hash),
            "transactionIndex": _hex(index),
            "blockHash": encode_hex(block.header.hash),
            "blockNumber": _hex(block.header.block_number),
            "from": to_checksum_address(tx.sender),
            "to": to_checksum_address(tx.to) if tx.to else None,
            "cumulativeGasUsed": _hex(receipt.gas_used),
            "gasUsed": _hex(receipt.gas_used - previous),
            "effectiveGasPrice": _hex(price),
            "contractAddress": contract,
            "logs": [_log_json(log, block.header, tx, index, i) for i, log in logs],
            "logsBloom": encode_hex(receipt.bloom.to_bytes(256, "big")),
            "status": "0x1" if receipt.state_root == b"\x01" else "0x0",
            "type": _hex(tx.type_id or 0),
        }

    # blocks

    def rpc_eth_getBlockByNumber(self, params):
        tag, full = _params(params, 1, 2)
        try:
            header = self._header(tag)
        except RpcError:
            if isinstance(tag, str) and tag.startswith("0x"):
                return None  # a future block: null, as geth answers
            raise
        return _block_json(self.chain.get_block_by_header(header), bool(full))

    def rpc_eth_getBlockByHash(self, params):
        block_hash, full = _params(params, 1, 2)
        try:
            block = self.chain.get_block_by_hash(_hash(block_hash, "hash"))
        except (BlockNotFound, HeaderNotFound):
            return None
        return _block_json(block, bool(full))

    def rpc_eth_feeHistory(self, params):
        count, newest, percentiles = _params(params, 2, 3)
        count = count if isinstance(count, int) else _quantity(count, "blockCount")
        count = max(1, min(count, 1024))
        newest_header = self._header(newest)
        oldest = max(0, newest_header.block_number - count + 1)
        base_fees, ratios, rewards = [], [], []
        for number in range(oldest, newest_header.block_number + 1):
            block = self.chain.get_canonical_block_by_number(number)
            h = block.header
            base_fees.append(_hex(h.base_fee_per_gas))
            ratios.append(h.gas_used / h.gas_limit if h.gas_limit else 0.0)
            if percentiles:
                rewards.append([_hex(x) for x in self._rewards(block, percentiles)])
        next_header = self.chain.create_header_from_parent(newest_header)
        base_fees.append(_hex(next_header.base_fee_per_gas))
        result = {"oldestBlock": _hex(oldest), "baseFeePerGas": base_fees, "gasUsedRatio": ratios}
        if percentiles:
            result["reward"] = rewards
        return result

    def _rewards(self, block: BlockAPI, percentiles: List[float]) -> List[int]:
        receipts = block.get_receipts(self.chain.chaindb)
        base = block.header.base_fee_per_gas
        tips, previous = [], 0
        for tx, receipt in zip(block.transactions, receipts):
            tips.append((min(tx.max_priority_fee_per_gas, tx.max_fee_per_gas - base), receipt.gas_used - previous))
            previous = receipt.gas_used
        if not tips:
            return [0 for _ in percentiles]
        tips.sort()
        total = sum(g for _, g in tips)
        out = []
        for p in percentiles:
            threshold, acc = total * p / 100, 0
            for tip, gas in tips:
                acc += gas
                if acc >= threshold:
                    out.append(tip)
                    break
            else:
                out.append(tips[-1][0])
        return out

    # logs

    def _range(self, from_tag: Any, to_tag: Any) -> Tuple[int, int]:
        start = self._header(from_tag if from_tag is not None else "latest").block_number
        end = self._header(to_tag if to_tag is not None else "latest").block_number
        if end < start:
            raise RpcError(INVALID_PARAMS, f"fromBlock {start} is after toBlock {end}")
        if end - start >= MAX_LOG_RANGE:
            raise RpcError(INVALID_PARAMS, f"block range too large: at most {MAX_LOG_RANGE} blocks")
        return start, end

    def rpc_eth_getLogs(self, params):
        (flt,) = _params(params, 1, 1)
        if not isinstance(flt, dict):
            raise RpcError(INVALID_PARAMS, "filter: expected an object")
        if flt.get("blockHash"):
            numbers = [self._header_by_hash(_hash(flt["blockHash"], "blockHash")).block_number]
        else:
            start, end = self._range(flt.get("fromBlock"), flt.get("toBlock"))
            numbers = range(start, end + 1)
        addresses = flt.get("address")
        addresses = [addresses] if isinstance(addresses, str) else (addresses or [])
        wanted = {_address(a, "address") for a in addresses}
        topics = flt.get("topics") or []
        if not isinstance(topics, list):
            raise RpcError(INVALID_PARAMS, "topics: expected a list")
        topic_sets = []
        for position, entry in enumerate(topics):
            options = [entry] if isinstance(entry, str) else (entry or [])
            topic_sets.append({int.from_bytes(_hash(t, f"topics[{position}]"), "big") for t in options})
        out = []
        for number in numbers:
            block = self.chain.get_canonical_block_by_number(number)
            if not block.transactions:
                continue
            receipts = block.get_receipts(self.chain.chaindb)
            for tx_index, tx, _, logs in _block_logs(block, receipts):
                for log_index, log in logs:
                    if wanted and log.address not in wanted:
                        continue
                    if any(s and (i >= len(log.topics) or log.topics[i] not in s) for i, s in enumerate(topic_sets)):
                        continue
                    out.append(_log_json(log, block.header, tx, tx_index, log_index))
        return out

    # fee plugin

    def rpc_fee_getAccount(self, params):
        address, tag = _params(params, 1, 2)
        view = fee_account(self.chain, _address(address, "address"), self._header(tag))
        return account_json(view)

    def rpc_fee_getHistory(self, params):
        address, from_tag, to_tag = _params(params, 1, 3)
        start, end = self._range(from_tag if from_tag is not None else "earliest", to_tag)
        events = account_history(self.chain, _address(address, "address"), start, end)
        return [event.as_json() for event in events]


def account_json(view) -> Dict[str, Any]:
    return {
        "address": to_checksum_address(view.address),
        "blockNumber": view.block_number,
        "timestamp": view.timestamp,
        "status": view.status.name,
        "statusCode": int(view.status),
        "available": str(view.available_wei),
        "frozen": view.frozen,
        "deposited": str(view.deposited_wei),
        "charged": str(view.charged_wei),
        "expired": str(view.expired_wei),
        "remaining": str(view.remaining_wei),
        "lots": [
            {
                "lot": lot.slot,
                "amount": str(lot.amount_wei),
                "used": str(lot.used_wei),
                "released": str(lot.released_wei),
                "available": str(lot.available_wei),
                "start": lot.start,
                "expiry": lot.expiry,
                "expired": lot.expired,
            }
            for lot in view.lots
        ],
    }


# -- HTTP ----------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    api: RpcApi = None
    protocol_version = "HTTP/1.1"
    timeout = 30  # seconds a client may stall mid-request before its socket is dropped

    def log_message(self, fmt, *args):  # quiet by default; the CLI prints its own lines
        pass

    def _reply(self, status: int, body: Optional[bytes]) -> None:
        body = body or b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            error = RpcError(INVALID_REQUEST, f"request body must have a Content-Length of at most {MAX_BODY_BYTES} bytes")
            self.close_connection = True
            return self._reply(413 if length > MAX_BODY_BYTES else 411,
                               json.dumps({"jsonrpc": "2.0", "id": None, "error": error.as_json()}).encode())
        body = self.rfile.read(length)
        self._reply(200, self.api.handle_body(body))

    def do_GET(self):
        self._reply(405, json.dumps({"error": "use POST with a JSON-RPC body"}).encode())


def make_server(node: Node, host: str = "127.0.0.1", port: int = 8545) -> ThreadingHTTPServer:
    handler = type("Handler", (_Handler,), {"api": RpcApi(node)})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server
