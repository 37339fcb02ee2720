"""benchmarks/bench_cluster_etcd.py on a tiny workload, so it cannot rot (no speed asserted)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import bench_cluster_etcd  # noqa: E402
from tests.support.etcd import require_etcd  # noqa: E402


def test_append_benchmark_runs(etcd_devnet, chain_keys):
    result = bench_cluster_etcd.bench_appends(etcd_devnet.client_urls, 5, 100, chain_keys.chain_id)
    assert result["append"]["n"] == 5 and result["watch_delivery_after_commit"]["n"] == 5


@pytest.mark.slow
def test_failover_benchmarks_run(fresh_devnet, chain_keys):
    producer = bench_cluster_etcd.bench_producer_failover(fresh_devnet.client_urls, 1,
                                                          chain_keys.chain_id)
    assert producer["new_producer_seconds"]["max"] < 3
    etcd = bench_cluster_etcd.bench_etcd_leader_failover(fresh_devnet, 1, chain_keys.chain_id + 10**6)
    assert etcd["kills"] == 1


@pytest.mark.slow
def test_cluster_benchmark_runs_on_a_tiny_workload():
    """benchmarks/bench_cluster.py end to end (seconds of load, one kill, 20 blocks to resync):
    it runs and renders; no speed is asserted."""
    import bench_cluster
    import bench_cluster_model

    require_etcd()
    results = bench_cluster.run(seconds=2, kills=1, resync_blocks=20, out=None)
    assert results["throughput"]["cluster"]["mined_tx_per_s"] > 0
    assert results["failover"]["kills"] == 1
    assert results["resync"]["from_peer_then_etcd"]["from_peer_blocks"] == 18
    assert "## Failover" in bench_cluster_model.render(results)
