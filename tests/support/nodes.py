"""In-process nodes on a simulated clock, and transactions for them."""
from fee_plugin.node import ManualClock, Node, PoolConfig

from .chain import ETHER, GENESIS_TIME, VAULT, address, calldata, make_genesis, sign


def clocked_node(pool_config: PoolConfig = PoolConfig(), start: int = GENESIS_TIME + 10, **fee_overrides):
    """A node on a ManualClock; lots pay at once unless the genesis says otherwise."""
    fee_overrides.setdefault("consumption", "upfront")
    clock = ManualClock(start)
    return Node(make_genesis(**fee_overrides), clock=clock, pool_config=pool_config), clock


def deposit(node, clock, key, value=ETHER, nonce=None):
    """Deposit into the vault and seal it in its own block (one second later)."""
    nonce = node.pool.next_nonce(address(key)) if nonce is None else nonce
    node.send_transaction(sign(node.chain, key, VAULT, value=value, data=calldata("deposit"),
                               gas=300_000, nonce=nonce))
    clock.advance(1)
    block = node.produce()
    assert block is not None and len(block.transactions) == 1
    return block


def transfer(node, key, nonce, to=b"\x42" * 20, value=1, **kw):
    kw.setdefault("gas", 21_000)
    return sign(node.chain, key, to, value=value, nonce=nonce, **kw)
