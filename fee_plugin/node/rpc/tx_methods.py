"""Transactions: submission into the pool, lookups, receipts, and read-only calls."""
from typing import Any, Optional, Tuple

from eth.abc import BlockHeaderAPI
from eth.exceptions import TransactionNotFound
from eth_utils import encode_hex

from ..admission import TxRejected
from .base import MethodsBase
from .errors import INVALID_PARAMS, SERVER_ERROR, RpcError
from .params import address, data, hash32, positional, quantity
from .shapes import receipt_json, transaction_json

ZERO_ADDRESS = b"\x00" * 20


class TransactionMethods(MethodsBase):
    def rpc_eth_sendRawTransaction(self, params):
        (raw,) = positional(params, 1, 1)
        try:
            return encode_hex(self.node.submit(data(raw, "data")))
        except TxRejected as err:
            raise RpcError(SERVER_ERROR, err.message, err.data) from None

    def _locate(self, tx_hash: bytes):
        """(block, receipts, index) of a mined transaction, or None."""
        try:
            number, index = self.chain.chaindb.get_transaction_index(tx_hash)
        except TransactionNotFound:
            return None
        header = self.chain.get_canonical_block_header_by_number(number)
        block, receipts = self.block_and_receipts(header)
        return block, receipts, index

    def rpc_eth_getTransactionByHash(self, params):
        (tx_hash,) = positional(params, 1, 1)
        tx_hash = hash32(tx_hash, "hash")
        found = self._locate(tx_hash)
        if found is None:
            pooled = self.node.pool.get(tx_hash)
            return transaction_json(pooled.tx, None, None) if pooled is not None else None
        block, _, index = found
        return transaction_json(block.transactions[index], block.header, index)

    def rpc_eth_getTransactionReceipt(self, params):
        (tx_hash,) = positional(params, 1, 1)
        found = self._locate(hash32(tx_hash, "hash"))
        if found is None:
            return None
        block, receipts, index = found
        return receipt_json(block, receipts, index)

    # -- calls ----------------------------------------------------------------------------

    def _call_params(self, params) -> Tuple[BlockHeaderAPI, bytes, Optional[bytes], bytes, Optional[int], int, Any]:
        call, tag = positional(params, 1, 2)
        if not isinstance(call, dict):
            raise RpcError(INVALID_PARAMS, "call: expected a transaction object")
        header, db = self.read_point(tag)
        sender = address(call["from"], "from") if call.get("from") else ZERO_ADDRESS
        to = address(call["to"], "to") if call.get("to") else None  # None: a creation
        payload = call.get("input") if call.get("input") is not None else call.get("data", "0x")
        gas = quantity(call["gas"], "gas") if call.get("gas") else None
        value = quantity(call["value"], "value") if call.get("value") else 0
        return header, sender, to, data(payload, "input"), gas, value, db

    def rpc_eth_call(self, params: Any):
        return encode_hex(self.calls.call(*self._call_params(params)))

    def rpc_eth_estimateGas(self, params: Any):
        return hex(self.calls.estimate(*self._call_params(params)))
