"""The large run of tests/test_writeback.py's oracle comparison (outside CI).

    python scripts/writeback_large.py [SEEDS] [BLOCKS]      # default 300 seeds x 20 blocks

Builds, for each seed, the same random blocks with the per-transaction design and the
write-back design in lockstep (any difference fails with the block and transaction), then
prints the totals of included, refused and dropped-after-running transactions.
"""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.test_writeback import run_lockstep  # noqa: E402

seeds = int(sys.argv[1]) if len(sys.argv) > 1 else 300
blocks = int(sys.argv[2]) if len(sys.argv) > 2 else 20
start = time.perf_counter()
total = {}
for seed in range(1000, 1000 + seeds):
    for key, value in run_lockstep(seed, blocks=blocks).items():
        total[key] = total.get(key, 0) + value
print(f"seeds {seeds} x {blocks} blocks: identical; {total}; {time.perf_counter() - start:.0f} s")
