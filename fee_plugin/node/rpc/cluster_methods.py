"""Cluster health and raw chain data: fee_clusterStatus, debug_getRawHeader, debug_getRawBlock.

The raw methods are geth's (RLP as 0x-hex, by number, tag or hash): a node syncing history
from a peer fetches headers and blocks through them and checks them itself. fee_clusterStatus
answers on a node started with --etcd (role, producer, etcd head, lag in blocks, etcd round
trip, halted error); elsewhere it is an error saying so.
"""
from typing import Any

import rlp
from eth.abc import BlockHeaderAPI
from eth_utils import encode_hex

from .base import MethodsBase
from .errors import METHOD_NOT_FOUND, RpcError
from .params import hash32, positional

HASH_HEX_CHARS = 66


class ClusterMethods(MethodsBase):
    def _raw_target(self, params: Any) -> BlockHeaderAPI:
        (target,) = positional(params, 1, 1)
        if isinstance(target, str) and len(target) == HASH_HEX_CHARS:
            return self.header_by_hash(hash32(target, "block hash"))
        return self.header(target)

    def rpc_debug_getRawHeader(self, params):
        return encode_hex(rlp.encode(self._raw_target(params)))

    def rpc_debug_getRawBlock(self, params):
        return encode_hex(rlp.encode(self.block(self._raw_target(params))))

    def rpc_fee_clusterStatus(self, params):
        positional(params, 0, 0)
        status = getattr(self.node, "cluster_status", None)
        if status is None:
            raise RpcError(METHOD_NOT_FOUND, "fee_clusterStatus: this node is not in a cluster "
                           "(started without --etcd)")
        return status()
