"""The node benchmark still runs end to end (tiny: two clients, one second per row).

Speed is measured by `python benchmarks/bench_node.py` only: nothing here asserts a rate.
What is asserted: a real node subprocess took and mined the load, the engine imported the
node's own blocks, and the table renders.
"""
import sys

import pytest

from .support.chain import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

import bench_node  # noqa: E402
import proc_stats  # noqa: E402

@pytest.mark.slow
def test_node_benchmark_runs_and_renders():
    rows = [("automine", 1, "process"), ("block-time-1", 5, "thread")]
    results = bench_node.run(seconds=1.0, clients=2, rows=rows, out=None)
    for row in results["rows"]:
        assert row["accepted_tx_per_s"] > 0 and row["unmined_after_drain"] == 0
        assert row["engine"]["transactions"] > 0 and row["node_over_engine"] is not None
        assert row["max_block_ahead_of_wall_s"] <= 1.0
        assert 0 < row["rss_anon_start_mib"] < row["rss_start_mib"]
    # the process builder's child is counted: two interpreters hold more than one
    assert results["rows"][0]["rss_start_mib"] > results["rows"][1]["rss_start_mib"]
    assert "| automine | 1 | process |" in bench_node.render(results)


def test_drift_is_the_slope_of_the_last_five_minutes():
    samples = [{"rss": 100.0 + (i if i >= 30 else 10 * i)} for i in range(60)]  # 10 s apart
    assert proc_stats.drift_mib_per_min(samples, "rss") == 6.0  # 1 MiB per 10 s sample
    assert proc_stats.drift_mib_per_min(samples[:3], "rss") is None
