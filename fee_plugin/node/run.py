"""`fee-node run`: a node with its pool, producer and JSON-RPC over HTTP.

The chain lives in LevelDB under --datadir (by default a directory per genesis under
~/.fee-node), with the pool's journal beside it, so a restart resumes at the last
committed block with every accepted transaction still pending. --memory keeps nothing.
"""
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Optional

import click

from .cli_support import CliError, genesis_or_fail
from .cluster.cli import cluster_config, cluster_options, join_cluster

DEFAULT_HOME = Path.home() / ".fee-node"


def default_datadir(genesis) -> Path:
    from ..chain import genesis_header

    return DEFAULT_HOME / f"chain-{genesis.chain_id}-{genesis_header(genesis).hash.hex()[:12]}"


def open_db(datadir: Path):
    from .leveldb import LevelDB

    datadir.mkdir(parents=True, exist_ok=True)
    try:
        return LevelDB(str(datadir / "chain"))
    except Exception as err:  # plyvel: locked by a running node, corrupt, permissions
        raise CliError(f"cannot open the database in {datadir}: {err}") from None


def observe(node, api):
    """The status index (rebuilt from the vault's logs, with a progress bar) and metrics."""
    from rich.progress import Progress

    from .metrics import NodeMetrics
    from .status_index import StatusIndex

    index = StatusIndex(node.chain, node.genesis)
    head = node.chain.get_canonical_head().block_number
    with Progress(transient=True, disable=head < 1000) as progress:
        task = progress.add_task("indexing fee accounts", total=max(head, 1))
        index.rebuild(lambda done, total: progress.update(task, completed=done))
    metrics = NodeMetrics(node, index, api.methods)
    node.listeners.append(metrics.on_block)
    api.observer = metrics.on_request
    api.status_index = index
    metrics.subscribers = api.subscriptions.count
    return metrics


def http_servers(api, metrics, host: str, port: int, *, access, ws_port: Optional[int] = None,
                 metrics_port: Optional[int] = None, console: bool = True) -> list:
    """The node's HTTP servers (not started): JSON-RPC, WebSocket, /metrics and, unless
    `console` is off, the console on `port`, all behind the RPC's access rules; with
    `metrics_port`, a second server with /metrics only (no RPC, no console)."""
    from .console import console_routes
    from .metrics import metrics_route
    from .rpc import HttpServer

    routes = [metrics_route(metrics)]
    servers = [HttpServer(api, host, port, routes + console_routes(api) if console else routes,
                          access=access, ws_port=ws_port)]
    if metrics_port is not None:
        servers.append(HttpServer(api, host, metrics_port, routes, serve_rpc=False))
    return servers


@click.command()
@click.option("--genesis", "genesis_path", required=True, type=click.Path(dir_okay=False), help="genesis JSON file")
@click.option("--datadir", type=click.Path(file_okay=False, path_type=Path),
              help="LevelDB directory [default: ~/.fee-node/chain-<id>-<genesis hash>]")
@click.option("--memory", is_flag=True, help="keep the chain in memory only (nothing survives a restart)")
@click.option("--host", default="127.0.0.1", show_default=True, help="interface to bind")
@click.option("--port", default=8545, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free port")
@click.option("--ws-port", type=click.IntRange(0, 65535),
              help="also serve JSON-RPC and WebSocket on this port [default: WebSocket on --port]")
@click.option("--http-corsdomain", default="", help="comma-separated origins a browser page may call "
              "from (`*`: any) [default: none]")
@click.option("--http-vhosts", default="localhost", show_default=True,
              help="comma-separated Host names accepted on HTTP (`*`: any; IP addresses always)")
@click.option("--ws-origins", default="", help="comma-separated Origins accepted on WebSocket "
              "upgrades (`*`: any) [default: http://localhost and http://<hostname>]")
@click.option("--block-time", type=click.FloatRange(min=1), help="seal every N seconds, empty blocks too "
              "[default: seal when there is work, at most one block a second]")
@click.option("--automine-delay", default=0.3, show_default=True, type=click.FloatRange(0, 1),
              help="automine: seconds between the first pending transaction and its block")
@click.option("--rpc-gas-cap", default=50_000_000, show_default=True, type=click.IntRange(21_000),
              help="gas cap of eth_call / eth_estimateGas")
@click.option("--rpc-evm-timeout", default=5.0, show_default=True, type=click.FloatRange(min=0.1),
              help="seconds one request's calls may run (a batch shares it)")
@click.option("--rpc-call-workers", default=2, show_default=True, type=click.IntRange(1, 64),
              help="eth_call / eth_estimateGas executing at once")
@click.option("--txpool-account-slots", default=128, show_default=True, type=click.IntRange(1),
              help="pending transactions per sender")
@click.option("--txpool-global-slots", default=8192, show_default=True, type=click.IntRange(1),
              help="pending transactions in total")
@click.option("--max-block-bytes", default=1_000_000, show_default=True, type=click.IntRange(10_000),
              help="byte cap of a block's transactions")
@click.option("--builder", type=click.Choice(["process", "thread"]), default="process", show_default=True,
              help="build blocks in a process of their own (off the RPC's interpreter) or in a thread")
@click.option("--metrics-port", type=click.IntRange(0, 65535),
              help="serve /metrics on this port too [default: only on --port]")
@click.option("--no-console", is_flag=True, help="do not serve the read-only console at /console")
@click.option("-v", "--verbose", is_flag=True, help="log every block and dropped transaction")
@cluster_options
def run(genesis_path: str, datadir: Optional[Path], memory: bool, host: str, port: int,
        ws_port: Optional[int], http_corsdomain: str, http_vhosts: str, ws_origins: str,
        block_time: Optional[float], automine_delay: float, rpc_gas_cap: int, rpc_evm_timeout: float,
        rpc_call_workers: int, txpool_account_slots: int, txpool_global_slots: int,
        max_block_bytes: int, builder: str, metrics_port: Optional[int], no_console: bool, verbose: bool,
        **cluster_flags) -> None:
    """Start a node with JSON-RPC over HTTP (with --etcd: as one node of a cluster)."""
    from ..chain import GenesisMismatchError
    from .cluster.clusternode import ClusterNode
    from .node import Node
    from .pool import PoolConfig
    from .rpc import RpcApi, RpcLimits
    from .rpc.cors import AccessRules, split_list

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    genesis = genesis_or_fail(genesis_path)
    cluster = cluster_config(cluster_flags)
    if memory and datadir is not None:
        raise CliError("--memory and --datadir exclude each other")
    datadir = None if memory else (datadir or default_datadir(genesis))
    db = open_db(datadir) if datadir is not None else None
    pool_config = PoolConfig(account_slots=txpool_account_slots, global_slots=txpool_global_slots)
    node_kwargs = {"cluster": cluster} if cluster is not None else {}
    if builder == "process":
        from .builder_process import ProcessBlockBuilder
        node_kwargs["builder_class"] = ProcessBlockBuilder
    try:
        node = (Node if cluster is None else ClusterNode)(
            genesis, db, block_time=block_time, pool_config=pool_config,
            journal_path=datadir / "txpool.journal" if datadir is not None else None,
            max_block_bytes=max_block_bytes, automine_delay=automine_delay, **node_kwargs)
    except GenesisMismatchError as err:
        raise CliError(f"{err}; use another --datadir or the genesis that created it") from None
    limits = RpcLimits(gas_cap=rpc_gas_cap, evm_timeout_seconds=rpc_evm_timeout,
                       call_workers=rpc_call_workers)
    api = RpcApi(node, limits)
    metrics = observe(node, api)
    access = AccessRules(split_list(http_corsdomain), split_list(http_vhosts), split_list(ws_origins))
    servers = http_servers(api, metrics, host, port, access=access, ws_port=ws_port,
                           metrics_port=metrics_port, console=not no_console)
    server = servers[0]
    stop = threading.Event()
    producer = threading.Thread(target=node.run_producer, args=(stop,), name="producer", daemon=True)

    def shutdown(*_):
        stop.set()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    try:
        for each in servers:
            each.start()
    except OSError as err:
        for each in servers:
            each.stop()
        node.close()
        raise CliError(f"cannot listen on {host}: {err.strerror}") from None
    joined = ""
    if cluster is not None:
        metrics.cluster_status = node.cluster_status
        try:
            joined = "; " + join_cluster(node, server.url)
        except CliError:
            for each in servers:
                each.stop()
            node.close()
            raise
    producer.start()
    head = node.chain.get_canonical_head()
    pending, queued = node.pool.stats()
    click.echo(f"fee-node listening on {server.url} chain {genesis.chain_id} head {head.block_number} "
               f"({'automine' if block_time is None else f'{block_time:g}s blocks'}, "
               f"{'datadir ' + str(datadir) if datadir else 'in memory'}, "
               f"{pending + queued} pooled transactions; WebSocket {server.ws_url}"
               f"{'; metrics ' + servers[1].url + '/metrics' if metrics_port is not None else ''}{joined})",
               err=True)
    sys.stderr.flush()
    try:
        stop.wait()
    finally:
        stop.set()
        for each in servers:
            each.stop()
        producer.join(10)
        node.close()
