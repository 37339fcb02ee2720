"""The status index equals a brute-force evaluation of every account at every head, and
predicts status changes that time alone brings (expiries, release) without any log."""
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from fee_plugin.lots import Status
from fee_plugin.node.status_index import StatusIndex
from fee_plugin.query import fee_account

from .support.chain import ETHER, USER_KEYS, VALIDITY, address
from .support.nodes import clocked_node, deposit, transfer

KEYS = USER_KEYS[:4]


def brute_force(node, owners):
    statuses = Counter(fee_account(node.chain, owner).status.name for owner in owners)
    return {s.name: statuses.get(s.name, 0) for s in Status if s != Status.NONE}


def test_index_follows_time_alone_through_expiry():
    node, clock = clocked_node(consumption="uniform", initialReleaseBps=1000, lowBalance="1")
    index = StatusIndex(node.chain, node.genesis)
    node.listeners.append(lambda built: index.apply_block(built.block.header, built.receipts))
    deposit(node, clock, KEYS[0], value=ETHER // 10)
    assert index.status_counts()["ACTIVE"] == 1
    assert index.watch_list(VALIDITY // 2, 10) == []  # nothing happens within half a lot's life
    (upcoming,) = index.watch_list(VALIDITY * 2, 10)
    assert (upcoming["statusNow"], upcoming["status"]) == ("ACTIVE", "EXPIRED")
    expiry = upcoming["at"]
    clock.set(expiry - 1)
    node.produce(force_empty=True)
    assert index.status_counts()["ACTIVE"] == 1
    clock.set(expiry)
    node.produce(force_empty=True)  # no transaction, no log: time alone
    assert index.status_counts()["EXPIRED"] == 1
    assert brute_force(node, [address(KEYS[0])]) == index.status_counts()


@settings(max_examples=15)
@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["deposit", "transfer", "wait"]),
                          st.integers(1, VALIDITY // 3)), min_size=3, max_size=25))
def test_index_counts_equal_brute_force_after_every_block(steps):
    node, clock = clocked_node(consumption="uniform", initialReleaseBps=2000, lowBalance=str(10**16))
    index = StatusIndex(node.chain, node.genesis)
    node.listeners.append(lambda built: index.apply_block(built.block.header, built.receipts))
    owners = [address(k) for k in KEYS]
    funded = set()
    for who, action, wait in steps:
        key = KEYS[who]
        try:
            if action == "deposit":
                deposit(node, clock, key, value=ETHER // 50)
                funded.add(who)
                continue
            if action == "transfer" and who in funded:
                node.send_transaction(transfer(node, key, node.pool.next_nonce(address(key))))
        except Exception:
            pass  # refused (not enough released): the index must still agree
        clock.advance(wait)
        node.produce(force_empty=True)
        assert index.status_counts() == brute_force(node, owners)
    rebuilt = StatusIndex(node.chain, node.genesis)
    rebuilt.rebuild()
    assert rebuilt.status_counts() == index.status_counts()
