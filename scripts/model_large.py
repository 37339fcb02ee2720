"""The large reliability run of tests/test_model.py (outside CI; see README "Reliability").

    HYPOTHESIS_PROFILE=large MODEL_EXAMPLES=2000 MODEL_STEPS=50 python scripts/model_large.py

Prints the number of examples, state-machine steps checked and the wall time.
"""
import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tests.conftest  # noqa: E402,F401  (loads the hypothesis profile)
from tests import test_model  # noqa: E402

start = time.perf_counter()
suite = unittest.TestLoader().loadTestsFromTestCase(test_model.test_fee_chain_matches_reference_model)
result = unittest.TextTestRunner(verbosity=1).run(suite)
seconds = time.perf_counter() - start
settings = test_model.test_fee_chain_matches_reference_model.settings
print(f"examples<= {settings.max_examples}, steps checked {test_model.FeeChainMachine.checks}, "
      f"{seconds:.0f} s, {'PASSED' if result.wasSuccessful() else 'FAILED'}")
sys.exit(0 if result.wasSuccessful() else 1)
