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

@pytest.mark.slow

def test_node_benchmark_runs_and_renders():
    results = bench_node.run(seconds=1.0, clients=2, rows=[("automine", 1), ("block-time-1", 5)], out=None)
    for row in results["rows"]:
        assert row["accepted_tx_per_s"] > 0 and row["unmined_after_drain"] == 0
        assert row["engine"]["transactions"] > 0 and row["node_over_engine"] is not None
        assert row["max_block_ahead_of_wall_s"] <= 1.0
    assert "| automine | 1 |" in bench_node.render(results)
