"""Everything that runs a node around the consensus core: pool, builder, clock, storage,
RPC, CLI. Imports only downward (from `fee_plugin`), never the other way."""
from .admission import TxRejected
from .clock import ManualClock, SystemClock
from .node import Node
from .pool import PoolConfig

__all__ = ["ManualClock", "Node", "PoolConfig", "SystemClock", "TxRejected"]
