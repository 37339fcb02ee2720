"""The benchmark code still runs (tiny N); speed is measured by the benchmark command only."""
import importlib.util

from .chain_helpers import REPO


def test_overhead_benchmark_runs_on_a_tiny_workload():
    spec = importlib.util.spec_from_file_location("bench_overhead", REPO / "benchmarks" / "bench_overhead.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.run(senders=3, per_sender=2, rounds=2)
    assert result["transactions"] == 6 and result["ratio_median"] > 0
