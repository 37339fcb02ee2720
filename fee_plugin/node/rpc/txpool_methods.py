"""txpool_* (geth's namespace): what the pool holds, pending (executable) and queued."""
from typing import Any, Dict, List

from eth_utils import to_checksum_address

from ..pool import PoolTx
from .base import MethodsBase
from .params import address, positional
from .shapes import transaction_json


def _by_sender(runs: Dict[bytes, List[PoolTx]], describe) -> Dict[str, Dict[str, Any]]:
    return {to_checksum_address(sender): {str(e.nonce): describe(e.tx) for e in run}
            for sender, run in runs.items()}


def _summary(tx) -> str:
    to = to_checksum_address(tx.to) if tx.to else "contract creation"
    return f"{to}: {tx.value} wei + {tx.gas} gas × {tx.max_fee_per_gas} wei"


class TxPoolMethods(MethodsBase):
    def rpc_txpool_status(self, params):
        positional(params, 0, 0)
        pending, queued = self.node.pool.stats()
        return {"pending": hex(pending), "queued": hex(queued)}

    def rpc_txpool_content(self, params):
        positional(params, 0, 0)
        pending, queued = self.node.pool.content()
        describe = lambda tx: transaction_json(tx, None, None)  # noqa: E731
        return {"pending": _by_sender(pending, describe), "queued": _by_sender(queued, describe)}

    def rpc_txpool_contentFrom(self, params):
        (owner,) = positional(params, 1, 1)
        owner = address(owner, "address")
        pending, queued = self.node.pool.content()
        describe = lambda tx: transaction_json(tx, None, None)  # noqa: E731
        return {"pending": {str(e.nonce): describe(e.tx) for e in pending.get(owner, [])},
                "queued": {str(e.nonce): describe(e.tx) for e in queued.get(owner, [])}}

    def rpc_txpool_inspect(self, params):
        positional(params, 0, 0)
        pending, queued = self.node.pool.content()
        return {"pending": _by_sender(pending, _summary), "queued": _by_sender(queued, _summary)}
