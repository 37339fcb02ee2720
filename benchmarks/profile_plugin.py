"""Where the plugin side's time goes: profile one block of benchmark 1's value transfers
(or the mix) on the fee-plugin chain, state root included.

    python benchmarks/profile_plugin.py [--workload transfers|distinct|mix] [--lots N]
        [--write-back | --plain]

Uses pyinstrument when installed (`pip install -e ".[dev]"`), cProfile otherwise. A
profile is for finding hot spots; the figures to quote are the ratios from run_all.py.
"""
import argparse
import cProfile
import pstats
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_overhead  # noqa: E402
from bench_common import open_chain, plugin_chain_class, time_block  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=("transfers", "distinct", "mix"), default="transfers")
    parser.add_argument("--lots", type=int, default=1, help="lots granted per sender")
    parser.add_argument("--write-back", action="store_true", help="profile the write-back design")
    parser.add_argument("--plain", action="store_true", help="profile plain py-evm instead")
    parser.add_argument("--cprofile", action="store_true", help="use cProfile even if pyinstrument is there")
    args = parser.parse_args()
    genesis, plugin, plain, workloads = bench_overhead.setup(lots_per_sender=args.lots)
    if args.plain:
        plugin = plain
    elif args.write_back:
        plugin = open_chain(plugin, plugin_chain_class(genesis, write_back=True))
    txs = list(workloads.values())[("transfers", "distinct", "mix").index(args.workload)]
    ts = plugin.header.timestamp + 10
    time_block(plugin, txs, ts)  # warm-up
    try:
        if args.cprofile:
            raise ImportError
        from pyinstrument import Profiler
    except ImportError:
        profile = cProfile.Profile()
        profile.runcall(time_block, plugin, txs, ts + 1)
        pstats.Stats(profile).sort_stats("cumulative").print_stats(45)
        return
    profiler = Profiler(interval=0.0005)
    profiler.start()
    time_block(plugin, txs, ts + 1)
    profiler.stop()
    print(profiler.output_text(unicode=True, color=False, show_all=False))


if __name__ == "__main__":
    main()
