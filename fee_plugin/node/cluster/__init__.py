"""The etcd layer of a consortium cluster: etcd's Raft orders the blocks, one node produces.

- `client.EtcdClient`: etcd v3 over its JSON gateway (`etcd_wire`, `watch`), failover across
  members, deadlines.
- `session.Session`: the node's lease, kept alive, with a local bound on its life.
- `election.Election`: which node produces; its `Fence` guards every append.
- `blocklog.BlockLog`: committed blocks (fenced append, head, get, keep K; `blocktypes`),
  `blockwatch.BlockWatch` delivering them in order.
- `registry.NodeRegistry`: node id -> RPC URL, for forwarding and peer sync.
- `member.ClusterMember`: all of the above for one node, with the producer's step-down rule.
- `clusternode.ClusterNode`: a fee node in a cluster (commit hook, producer terms, halting),
  with `follower`, `forward`, `sync`, `peer` and `pressure`; `config` and `cli` its flags.
- `devnet`, `devnet_nodes`: etcd members and fee nodes on loopback (`fee-node devnet`, tests).

No consensus or peer-to-peer code of our own: etcd (Raft) decides, this package asks.
"""
from .blocklog import (
    AppendResult,
    AppendStatus,
    BlockLog,
    BlockLogCorrupt,
    BlocksPruned,
    BlockTooLarge,
    BlockWatch,
    Head,
    KeepResult,
    LoggedBlock,
    block_identity,
)
from .client import (
    EtcdClient,
    EtcdCompacted,
    EtcdError,
    EtcdRequestError,
    EtcdUnavailable,
)
from .election import Election, Fence, Leader
from .keys import ChainKeys
from .member import ClusterMember, NotProducer
from .registry import NodeRegistry
from .session import Session

__all__ = [
    "AppendResult", "AppendStatus", "BlockLog", "BlockLogCorrupt", "BlockTooLarge",
    "BlockWatch", "BlocksPruned", "ChainKeys", "ClusterMember", "Election", "EtcdClient", "EtcdCompacted",
    "EtcdError", "EtcdRequestError", "EtcdUnavailable", "Fence", "Head", "KeepResult", "Leader",
    "LoggedBlock", "NodeRegistry", "NotProducer", "Session", "block_identity",
]
