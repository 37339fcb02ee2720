"""The large reliability run of tests/test_model.py (outside CI; see README "Reliability").

    HYPOTHESIS_PROFILE=large MODEL_EXAMPLES=1000 MODEL_STEPS=50 python scripts/model_large.py

Runs the three machines (uniform release, upfront lots with the spent chain, uniform with an
initial release) and prints, per machine, the examples, state-machine steps checked and the
wall time.
"""
import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tests.conftest  # noqa: E402,F401  (loads the hypothesis profile)
from tests import test_model  # noqa: E402

CASES = (test_model.test_fee_chain_matches_reference_model,
         test_model.test_upfront_chain_matches_reference_model,
         test_model.test_initial_release_chain_matches_reference_model)

ok, total = True, 0
for case in CASES:
    before = test_model.FeeChainMachine.checks
    start = time.perf_counter()
    result = unittest.TextTestRunner(verbosity=1).run(unittest.TestLoader().loadTestsFromTestCase(case))
    steps = test_model.FeeChainMachine.checks - before
    total += steps
    ok = ok and result.wasSuccessful()
    print(f"{case.__name__}: examples<= {case.settings.max_examples}, steps checked {steps}, "
          f"{time.perf_counter() - start:.0f} s, {'PASSED' if result.wasSuccessful() else 'FAILED'}", flush=True)
print(f"all machines: steps checked {total}, {'PASSED' if ok else 'FAILED'}")
sys.exit(0 if ok else 1)
