"""The example genesis as a fresh dict, and with one field changed or removed: the ground
both genesis test files build on (tests/test_genesis.py, tests/test_genesis_fields.py)."""
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "genesis.json"

FEE = "config.feePlugin"
ALICE = "0x1a642f0E3c3aF545E7AcBD38b07251B3990914F1"  # dev key 0x01..01, funded in the example
OPERATOR = "0x5050A4F4b3f9338C3472dcC01A87C76A144b3c9c"  # dev key 0x02..02
VAULT = "0x000000000000000000000000000000000000fee0"
TREASURY = "0x00000000000000000000000000000000007e5a57"
A = f"alloc.{ALICE}"
DELETE = object()


def example():
    return json.loads(EXAMPLE.read_text())


def mutate(path, value):
    """The example with the field at a dotted path set to value (or deleted: DELETE)."""
    raw = example()
    *parents, last = path.split(".")
    node = raw
    for key in parents:
        node = node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return raw
