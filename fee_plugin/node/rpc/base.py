"""What every group of RPC methods shares: the node, its limits, block selection."""
from typing import Any, Tuple

from eth.abc import BlockAPI, BlockHeaderAPI, ReceiptAPI
from eth.exceptions import HeaderNotFound
from eth_utils import encode_hex

from ..node import Node
from .calls import CallRunner
from .errors import INVALID_PARAMS, RpcError
from .limits import RpcLimits
from .params import hash32, quantity
from .pending import PendingBlocks

BLOCK_TAGS_AT_HEAD = ("latest", "safe", "finalized", "pending")


class MethodsBase:
    """Method groups are mixins over this (py-evm's way of composing behaviour)."""

    def __init__(self, node: Node, limits: RpcLimits) -> None:
        self.node = node
        self.limits = limits
        self.calls = CallRunner(node.chain, limits)
        self.pending = PendingBlocks(node, limits.pending_build_seconds)

    @property
    def chain(self):
        return self.node.chain

    def head(self) -> BlockHeaderAPI:
        return self.chain.get_canonical_head()

    def header(self, tag: Any) -> BlockHeaderAPI:
        """A committed header for a block tag, number or EIP-1898 object."""
        if tag is None or tag in BLOCK_TAGS_AT_HEAD:
            return self.head()
        if tag == "earliest":
            return self.chain.get_canonical_block_header_by_number(0)
        if isinstance(tag, dict):
            if "blockHash" in tag:
                return self.header_by_hash(hash32(tag["blockHash"], "blockHash"))
            tag = tag.get("blockNumber")
        number = quantity(tag, "block")
        try:
            return self.chain.get_canonical_block_header_by_number(number)
        except HeaderNotFound:
            raise RpcError(INVALID_PARAMS, f"block {number} not found (head is "
                           f"{self.head().block_number})") from None

    def header_by_hash(self, block_hash: bytes) -> BlockHeaderAPI:
        try:
            return self.chain.get_block_header_by_hash(block_hash)
        except HeaderNotFound:
            raise RpcError(INVALID_PARAMS, f"block {encode_hex(block_hash)} not found") from None

    def block_and_receipts(self, header: BlockHeaderAPI) -> Tuple[BlockAPI, Tuple[ReceiptAPI, ...]]:
        """A committed block with its receipts, from the node's recent-block cache when
        it is there (reading them back walks two tries)."""
        cached = self.node.blocks.get(header.hash)
        if cached is not None:
            return cached
        block = self.chain.get_block_by_header(header)
        return block, tuple(block.get_receipts(self.chain.chaindb))

    def block(self, header: BlockHeaderAPI) -> BlockAPI:
        cached = self.node.blocks.get(header.hash)
        return cached[0] if cached is not None else self.chain.get_block_by_header(header)

    def read_point(self, tag: Any) -> Tuple[BlockHeaderAPI, Any]:
        """(header, database) to read state at: a committed block, or the pending block."""
        if tag == "pending":
            pending = self.pending.get()
            return pending.header, pending.db
        return self.header(tag), self.chain.chaindb.db

    def state(self, tag: Any):
        header, db = self.read_point(tag)
        vm = self.chain.get_vm(header)
        return vm.build_state(db, header, vm.chain_context, vm.previous_hashes)
