"""The cluster's command line: `fee-node run --etcd ...` flags and `fee-node devnet`."""
from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

import click

from ..cli_support import CliError
from .blocklog import DEFAULT_MAX_REQUEST_BYTES
from .config import DEFAULT_KEEP_BLOCKS, DEFAULT_MAX_FOLLOWER_LAG, ClusterConfig
from .session import DEFAULT_TTL_SECONDS
from .sync import Pin

_CERT = click.Path(exists=True, dir_okay=False)
CLUSTER_OPTIONS = [
    click.option("--etcd", "etcd", metavar="URL[,URL...]",
                 help="join a cluster: its etcd members' client URLs (the node produces blocks "
                      "only while elected; otherwise it applies the committed ones)"),
    click.option("--node-id", help="this node's id in the cluster (unique per node)"),
    click.option("--advertise-url", help="the RPC URL other nodes reach this one at "
                 "[default: the URL the server bound]"),
    click.option("--etcd-keep", type=click.IntRange(0), default=DEFAULT_KEEP_BLOCKS,
                 show_default=True, help="blocks etcd keeps; older ones are deleted and etcd's "
                 "history compacted (nodes fetch them from peers); 0 keeps all"),
    click.option("--etcd-max-request-bytes", type=click.IntRange(64 * 1024),
                 default=DEFAULT_MAX_REQUEST_BYTES, show_default=True,
                 help="the members' --max-request-bytes: every block must fit one request"),
    click.option("--etcd-lease-ttl", type=click.IntRange(1, 60), default=DEFAULT_TTL_SECONDS,
                 show_default=True, help="seconds of the node's etcd lease: bounds failover"),
    click.option("--max-follower-lag", type=click.IntRange(0), default=DEFAULT_MAX_FOLLOWER_LAG,
                 show_default=True, help="admission waits (up to 2 s) while this node, or on "
                 "the producer a live follower, is more blocks behind; 0: never"),
    click.option("--etcd-cacert", type=_CERT, help="CA certificate of the etcd members (https)"),
    click.option("--etcd-cert", type=_CERT, help="this node's client certificate for etcd"),
    click.option("--etcd-key", type=_CERT, help="the client certificate's private key"),
    click.option("--sync-pin", metavar="NUMBER:0xHASH",
                 help="a block the history fetched from peers must contain"),
]


def cluster_options(command):
    """Add the cluster flags to a click command (`fee-node run`)."""
    for option in reversed(CLUSTER_OPTIONS):
        command = option(command)
    return command


def cluster_config(flags: dict) -> ClusterConfig | None:
    """The cluster flags -> a ClusterConfig (None without --etcd); CliError if inconsistent."""
    etcd = flags.pop("etcd")
    if etcd is None:
        given = [name for name in ("node_id", "advertise_url", "etcd_cacert", "etcd_cert",
                                   "etcd_key", "sync_pin") if flags.get(name) is not None]
        if given:
            raise CliError(f"--{given[0].replace('_', '-')} needs --etcd")
        return None
    if not flags.get("node_id"):
        raise CliError("--etcd needs --node-id (unique per node)")
    try:
        pin = Pin.parse(flags["sync_pin"]) if flags.get("sync_pin") else None
        return ClusterConfig(
            etcd=tuple(url.strip() for url in etcd.split(",") if url.strip()),
            node_id=flags["node_id"], advertise_url=flags.get("advertise_url"),
            keep_blocks=flags["etcd_keep"], max_request_bytes=flags["etcd_max_request_bytes"],
            lease_ttl_seconds=flags["etcd_lease_ttl"], sync_pin=pin,
            max_follower_lag=flags["max_follower_lag"],
            etcd_cacert=flags.get("etcd_cacert"), etcd_cert=flags.get("etcd_cert"),
            etcd_key=flags.get("etcd_key"))
    except ValueError as err:
        raise CliError(str(err)) from None


def join_cluster(node, server_url: str) -> str:
    """Join the node to its cluster once its RPC server listens; a line for the banner."""
    from .client import EtcdError

    cluster = node.cluster
    try:
        node.join(cluster.advertise_url or server_url)
    except (EtcdError, OSError, ValueError) as err:
        raise CliError(f"cannot join the cluster through etcd {','.join(cluster.etcd)}: {err}") from None
    return (f"cluster node {cluster.node_id}, etcd {len(cluster.etcd)} endpoint(s), "
            f"keeps {cluster.keep_blocks or 'all'} blocks")


@click.command()
@click.option("--nodes", "count", default=3, show_default=True, type=click.IntRange(1, 9),
              help="etcd members and fee nodes")
@click.option("--dir", "directory", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="data of the members and nodes; run again on it to restart them")
@click.option("--genesis", "genesis_path", type=click.Path(exists=True, dir_okay=False),
              help="genesis of a new devnet [default: examples/genesis.json]")
@click.option("--block-time", type=click.FloatRange(min=1), help="passed to every node")
@click.option("-v", "--verbose", is_flag=True, help="nodes log every block (in <dir>/node*.log)")
def devnet(count: int, directory: Path, genesis_path: str | None, block_time: float | None,
           verbose: bool) -> None:
    """Start etcd members and fee nodes on loopback as one cluster; Ctrl-C stops them all."""
    from .devnet import DevnetError
    from .devnet_nodes import FeeDevnet

    extra = (["--block-time", f"{block_time:g}"] if block_time else []) + (["-v"] if verbose else [])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        cluster = FeeDevnet.open(directory, count, genesis_path, extra)
    except (DevnetError, ValueError, OSError) as err:
        raise CliError(str(err)) from None
    try:
        cluster.start()
        click.echo(f"devnet in {directory}: {count} etcd members, {count} fee nodes "
                   f"(chain {cluster.chain_id}); Ctrl-C stops them all")
        click.echo(f"etcd: {','.join(cluster.etcd.client_urls)}")
        for spec, url in zip(cluster.specs, cluster.urls):
            click.echo(f"{spec.node_id}: {url}  (data {spec.datadir}, log {spec.log_path})")
        sys.stdout.flush()
        while not stop.wait(1.0):
            for index, exited in cluster.exited().items():
                click.echo(f"{cluster.specs[index].node_id} exited with code {exited}; see "
                           f"{cluster.specs[index].log_path}", err=True)
                stop.set()
    except DevnetError as err:
        raise CliError(str(err)) from None
    finally:
        cluster.stop()
        click.echo("devnet stopped")
