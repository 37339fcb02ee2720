"""What a node needs to join a cluster, from `fee-node run`'s flags (cli.py) or from code."""
from __future__ import annotations

import re
import ssl
from dataclasses import dataclass

from .blocklog import DEFAULT_MAX_REQUEST_BYTES, TXN_OVERHEAD_BYTES
from .session import DEFAULT_TTL_SECONDS
from .sync import Pin

# etcd keeps the last K blocks: at the builder's default cap (1 MB) the worst case is 1 GB,
# inside etcd's default 2 GiB quota; older blocks come from peers.
DEFAULT_KEEP_BLOCKS = 1000
DEFAULT_MAX_FOLLOWER_LAG = 2
NODE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# A block's RLP is its transactions plus the header and a few bytes per transaction; the
# builder counts 600 bytes of header and the transactions' own bytes.
BLOCK_ENVELOPE_BYTES = 2048
PER_TX_ENVELOPE_FRACTION = 0.04


def block_bytes_cap(max_request_bytes: int) -> int:
    """The builder's byte cap that keeps every block inside one etcd request."""
    return int((max_request_bytes - TXN_OVERHEAD_BYTES - BLOCK_ENVELOPE_BYTES)
               * (1 - PER_TX_ENVELOPE_FRACTION))


@dataclass(frozen=True)
class ClusterConfig:
    etcd: tuple[str, ...]
    node_id: str
    advertise_url: str | None = None  # default: the URL the RPC server bound
    keep_blocks: int = DEFAULT_KEEP_BLOCKS  # 0: etcd keeps every block
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES  # the members' --max-request-bytes
    lease_ttl_seconds: int = DEFAULT_TTL_SECONDS
    max_follower_lag: int = DEFAULT_MAX_FOLLOWER_LAG  # back-pressure (pressure.py); 0: off
    sync_pin: Pin | None = None
    etcd_cacert: str | None = None
    etcd_cert: str | None = None
    etcd_key: str | None = None

    def __post_init__(self) -> None:
        if not self.etcd:
            raise ValueError("no etcd endpoint given")
        if not NODE_ID.match(self.node_id):
            raise ValueError(f"node id {self.node_id!r}: 1-64 letters, digits, '.', '_' or '-'")
        if self.keep_blocks < 0:
            raise ValueError(f"--etcd-keep {self.keep_blocks} < 0")
        if self.max_follower_lag < 0:
            raise ValueError(f"--max-follower-lag {self.max_follower_lag} < 0")
        if (self.etcd_cert is None) != (self.etcd_key is None):
            raise ValueError("--etcd-cert and --etcd-key go together")
        uses_tls = any(url.strip().startswith("https://") for url in self.etcd)
        if (self.etcd_cacert or self.etcd_cert) and not uses_tls:
            raise ValueError("etcd certificates given but no https:// etcd endpoint")

    @property
    def block_bytes_max(self) -> int:
        return block_bytes_cap(self.max_request_bytes)

    def ssl_context(self) -> ssl.SSLContext | None:
        """TLS to etcd: the members' CA (or the system's) and this node's client certificate."""
        if not any(url.strip().startswith("https://") for url in self.etcd):
            return None
        context = ssl.create_default_context(cafile=self.etcd_cacert)
        if self.etcd_cert is not None:
            context.load_cert_chain(self.etcd_cert, self.etcd_key)
        return context
