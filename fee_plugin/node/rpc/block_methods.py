"""Block contents by position: receipts of a block, a transaction by block and index,
transaction and uncle counts, uncles (a chain without ommers: always none), as geth answers."""
from typing import Any, Optional

from eth.abc import BlockHeaderAPI
from eth.exceptions import BlockNotFound, HeaderNotFound

from .base import MethodsBase
from .errors import RpcError
from .params import hash32, positional, quantity
from .shapes import receipt_json, transaction_json


class BlockMethods(MethodsBase):
    def _header_or_none(self, tag: Any) -> Optional[BlockHeaderAPI]:
        """A committed header by tag, number or EIP-1898 object; None for a block that does
        not exist (geth answers null, not an error)."""
        try:
            return self.header(tag)
        except RpcError:
            if isinstance(tag, str) and tag.startswith("0x") or isinstance(tag, dict):
                return None
            raise

    def _header_by_hash_or_none(self, block_hash: Any) -> Optional[BlockHeaderAPI]:
        try:
            return self.chain.get_block_header_by_hash(hash32(block_hash, "hash"))
        except (BlockNotFound, HeaderNotFound):
            return None

    def _block_and_receipts_at(self, tag: Any):
        """(block, receipts, is_pending) for a tag, number or hash; None if there is none."""
        if tag == "pending":
            pending = self.pending.get()
            return pending.block, pending.receipts, True
        if isinstance(tag, str) and len(tag) == 66:
            header = self._header_by_hash_or_none(tag)
        else:
            header = self._header_or_none(tag)
        if header is None:
            return None
        return (*self.block_and_receipts(header), False)

    def _tx_at(self, found, index: Any):
        position = quantity(index, "index")
        if found is None:
            return None
        block, _, is_pending = found
        if position >= len(block.transactions):
            return None
        if is_pending:
            return transaction_json(block.transactions[position], None, None)
        return transaction_json(block.transactions[position], block.header, position)

    def rpc_eth_getBlockReceipts(self, params):
        (tag,) = positional(params, 1, 1)
        found = self._block_and_receipts_at(tag)
        if found is None:
            return None
        block, receipts, _ = found
        return [receipt_json(block, receipts, i) for i in range(len(block.transactions))]

    def rpc_eth_getTransactionByBlockNumberAndIndex(self, params):
        tag, index = positional(params, 2, 2)
        return self._tx_at(self._block_and_receipts_at(tag), index)

    def rpc_eth_getTransactionByBlockHashAndIndex(self, params):
        block_hash, index = positional(params, 2, 2)
        hash32(block_hash, "hash")
        return self._tx_at(self._block_and_receipts_at(block_hash), index)

    def rpc_eth_getBlockTransactionCountByNumber(self, params):
        (tag,) = positional(params, 1, 1)
        found = self._block_and_receipts_at(tag)
        return None if found is None else hex(len(found[0].transactions))

    def rpc_eth_getBlockTransactionCountByHash(self, params):
        (block_hash,) = positional(params, 1, 1)
        header = self._header_by_hash_or_none(block_hash)
        return None if header is None else hex(len(self.block(header).transactions))

    def rpc_eth_getUncleCountByBlockNumber(self, params):
        (tag,) = positional(params, 1, 1)
        return None if self._header_or_none(tag) is None else "0x0"

    def rpc_eth_getUncleCountByBlockHash(self, params):
        (block_hash,) = positional(params, 1, 1)
        return None if self._header_by_hash_or_none(block_hash) is None else "0x0"

    def rpc_eth_getUncleByBlockNumberAndIndex(self, params):
        tag, index = positional(params, 2, 2)
        quantity(index, "index")
        self._header_or_none(tag)
        return None

    def rpc_eth_getUncleByBlockHashAndIndex(self, params):
        block_hash, index = positional(params, 2, 2)
        quantity(index, "index")
        hash32(block_hash, "hash")
        return None
