"""Who is in the cluster: each node's RPC URL at `nodes/<id>`, under its session's lease.

Followers look up where to forward transactions, and a wiped node finds a peer to fetch blocks
older than etcd keeps. An entry disappears with its node's lease and is put back under each new
lease the session grants.
"""
from __future__ import annotations

import json

from .client import prefix_end
from .keys import ChainKeys
from .session import Session


class NodeRegistry:
    def __init__(self, session: Session, keys: ChainKeys, node_id: str, rpc_url: str) -> None:
        assert node_id and "/" not in node_id, f"node id {node_id!r} is empty or has a '/'"
        self.session = session
        self.client = session.client
        self.keys = keys
        self.node_id = node_id
        self.rpc_url = rpc_url
        self._published = False
        session.add_listener(self._republish)

    def publish(self) -> None:
        """Put this node's entry under the session's current lease (again after each new one)."""
        self._published = True
        self._put(self.session.lease_id)

    def nodes(self) -> dict[str, str]:
        """Node id -> RPC URL of every node whose lease is alive."""
        read = self.client.range(self.keys.nodes_prefix, prefix_end(self.keys.nodes_prefix))
        entries = (json.loads(kv.value) for kv in read.kvs)
        return {str(entry["id"]): str(entry["url"]) for entry in entries}

    def peers(self) -> dict[str, str]:
        """The other nodes (id -> RPC URL)."""
        return {node_id: url for node_id, url in self.nodes().items() if node_id != self.node_id}

    def _put(self, lease_id: int) -> None:
        assert lease_id, "publish needs a started session"
        value = json.dumps({"id": self.node_id, "url": self.rpc_url}, sort_keys=True).encode()
        self.client.put(self.keys.node(self.node_id), value, lease_id)

    def _republish(self, lease_id: int) -> None:
        if self._published:
            self._put(lease_id)
