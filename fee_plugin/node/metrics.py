"""Prometheus metrics of a node (the official prometheus-client, a registry per node).

Counters and histograms are fed by the node's block listeners and the RPC's request
observer; gauges that describe "now" (head, pool sizes, accounts by status, rejections,
subscribers, cluster) are read at scrape time from the parts that own them, so a scrape
never scans the vault or the chain. RPC method labels are bounded: known method names
only, everything else counts as `other` (method names are untrusted input).
"""
from typing import Callable, Iterable, Optional

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from ..vault import LOT_EXPIRED_TOPIC
from .status_index import StatusIndex

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BLOCK_SECONDS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class NodeMetrics:
    def __init__(self, node, status_index: StatusIndex, known_methods: Iterable[str]) -> None:
        self.node = node
        self.status_index = status_index
        self.known_methods = frozenset(known_methods)
        self.registry = CollectorRegistry(auto_describe=True)
        self.subscribers: Callable[[], int] = lambda: 0  # set by the WebSocket transport
        self.cluster_status: Optional[Callable[[], dict]] = None  # set in cluster mode
        r = self.registry
        self.blocks = Counter("fee_node_blocks", "Blocks committed by this node", ["source"], registry=r)
        self.transactions = Counter("fee_node_transactions", "Transactions in committed blocks",
                                    ["source"], registry=r)
        self.fees = Counter("fee_node_fees_charged_wei", "Fees charged in committed blocks, in wei",
                            ["part"], registry=r)
        self.lots_expired = Counter("fee_node_lots_expired", "Fee lots swept after expiry", registry=r)
        self.swept = Counter("fee_node_swept_to_treasury_wei",
                             "Unused remainders of expired lots paid to the treasury, in wei", registry=r)
        self.block_seconds = Histogram("fee_node_block_seconds", "Time to build or import a block",
                                       ["source"], buckets=BLOCK_SECONDS_BUCKETS, registry=r)
        self.requests = Counter("fee_node_rpc_requests", "JSON-RPC requests by method and error code",
                                ["method", "code"], registry=r)
        for source in ("produced", "imported"):  # series exist from the first scrape
            self.blocks.labels(source)
            self.transactions.labels(source)
        for part in ("tip", "base"):
            self.fees.labels(part)
        r.register(_NowCollector(self))

    # -- feeds ---------------------------------------------------------------------------

    def on_block(self, built) -> None:
        """A node block listener: counts, fees, expiries, timing."""
        block, receipts = built.block, built.receipts
        source = getattr(built, "source", "produced")
        self.blocks.labels(source).inc()
        self.transactions.labels(source).inc(len(block.transactions))
        self.block_seconds.labels(source).observe(getattr(built, "seconds", 0.0))
        base_fee = block.header.base_fee_per_gas
        previous = 0
        vault = self.node.genesis.fee.vault
        for tx, receipt in zip(block.transactions, receipts):
            gas = receipt.gas_used - previous
            previous = receipt.gas_used
            tip = gas * min(tx.max_priority_fee_per_gas, tx.max_fee_per_gas - base_fee)
            self.fees.labels("tip").inc(tip)
            self.fees.labels("base").inc(gas * base_fee)
            for log in receipt.logs:
                if log.address == vault and log.topics and log.topics[0] == LOT_EXPIRED_TOPIC:
                    self.lots_expired.inc()
                    self.swept.inc(int.from_bytes(log.data[32:64], "big"))
        self.status_index.apply_block(block.header, receipts)

    def on_request(self, method: str, code: int) -> None:
        """The RPC's request observer (code 0: success)."""
        label = method if method in self.known_methods else "other"
        self.requests.labels(label, str(code)).inc()

    def scrape(self) -> bytes:
        return generate_latest(self.registry)


class _NowCollector:
    """Gauges read at scrape time from the parts that own them."""

    def __init__(self, metrics: NodeMetrics) -> None:
        self.m = metrics

    def describe(self):
        return []

    def collect(self):
        m = self.m
        head = m.node.chain.get_canonical_head()
        yield GaugeMetricFamily("fee_node_head_block_number", "Number of the head block", value=head.block_number)
        yield GaugeMetricFamily("fee_node_head_block_timestamp_seconds", "Timestamp of the head block",
                                value=head.timestamp)
        pending, queued = m.node.pool.stats()
        pool = GaugeMetricFamily("fee_node_txpool_transactions", "Transactions in the pool", labels=["state"])
        pool.add_metric(["pending"], pending)
        pool.add_metric(["queued"], queued)
        yield pool
        rejected = CounterMetricFamily("fee_node_transactions_rejected", "Transactions refused by the pool",
                                       labels=["reason"])
        for reason, count in sorted(m.node.pool.rejected.items()):
            rejected.add_metric([reason], count)
        yield rejected
        accounts = GaugeMetricFamily("fee_node_accounts", "Fee accounts by status as of the head block's time",
                                     labels=["status"])
        for status, count in m.status_index.status_counts().items():
            accounts.add_metric([status], count)
        yield accounts
        yield GaugeMetricFamily("fee_node_ws_subscribers", "WebSocket subscriptions open", value=m.subscribers())
        if m.cluster_status is not None:
            status = m.cluster_status()
            yield GaugeMetricFamily("fee_node_cluster_producer", "1 if this node is the block producer",
                                    value=1 if status.get("role") == "producer" else 0)
            if status.get("lagBlocks") is not None:
                yield GaugeMetricFamily("fee_node_cluster_follower_lag_blocks", "Blocks behind the cluster head",
                                        value=status["lagBlocks"])
            if status.get("etcdRoundTripMs") is not None:
                yield GaugeMetricFamily("fee_node_cluster_etcd_rtt_seconds", "etcd round trip",
                                        value=status["etcdRoundTripMs"] / 1e3)
            yield GaugeMetricFamily("fee_node_cluster_halted", "1 if this node halted on a block it "
                                    "could not reproduce", value=1 if status.get("halted") else 0)
            failed = CounterMetricFamily("fee_node_cluster_commits_failed", "Blocks built here whose etcd "
                                         "commit failed, by reason (lease, fenced, head moved, unknown, "
                                         "too large)", labels=["reason"])
            for reason, count in sorted((status.get("commitsFailed") or {}).items()):
                failed.add_metric([reason], count)
            yield failed


def metrics_route(metrics: NodeMetrics):
    """GET /metrics for an HttpServer (the scrape runs on a worker thread)."""
    from aiohttp import web

    async def handler(request, server):
        body = await server.run_blocking(metrics.scrape)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    return ("GET", "/metrics", handler)
