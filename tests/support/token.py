"""The test ERC-20 (tests/js/Token.sol, OpenZeppelin 5.4 compiled by solc 0.8.30 for Prague):
its ABI and init code as committed in tests/js/Token.json."""
import json
from functools import lru_cache
from pathlib import Path

TOKEN_JSON = Path(__file__).resolve().parents[1] / "js" / "Token.json"


@lru_cache(maxsize=1)
def token_artifact() -> dict:
    return json.loads(TOKEN_JSON.read_text())
