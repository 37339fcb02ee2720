"""A plain-list reference of the vault's account updates (contracts/LAYOUT.md, "What each
update does"), and a generator of stored v3 accounts consistent with it, for differential
tests of the contract and fee_plugin against each other."""
from dataclasses import dataclass, field
from typing import List, Tuple

from hypothesis import strategies as st

from fee_plugin.layout import FLAG_FROZEN, FLAG_OPENED, Head, Totals
from fee_plugin.lots import (
    AMOUNT_LIMIT,
    BPS_DENOMINATOR,
    LOTS_CAPACITY,
    TIME_LIMIT,
    Consumption,
    Line,
    Lot,
    ReleasePolicy,
)

from .lot_reference import ref_available, ref_rate, ref_released, ref_status

Event = Tuple[str, dict]


def ref_term(lot: Lot, t: int, policy: ReleasePolicy) -> int:
    """released, extended linearly past expiry, less used (the lot's share of the line)."""
    return lot.amount - ref_rate(lot, policy) * (lot.expiry - t) - lot.used


@dataclass
class RefAccount:
    opened: bool = False
    frozen: bool = False
    charge: List[Lot] = field(default_factory=list)  # charge order
    spent: List[Lot] = field(default_factory=list)  # chain order, newest first
    deposited: int = 0
    expired: int = 0
    last_expiry: int = 0
    status: int = 0  # as recorded

    @property
    def stored(self) -> List[Lot]:
        return self.charge + self.spent

    def available(self, t: int, policy: ReleasePolicy) -> int:
        return sum(ref_available(lot, t, policy) for lot in self.charge)

    def status_at(self, t: int, policy: ReleasePolicy, low: int) -> int:
        return int(ref_status(self.opened, self.frozen, self.stored, t, policy, low))

    @property
    def charged(self) -> int:
        return self.deposited - self.expired - sum(lot.amount - lot.used for lot in self.stored)

    def settle(self, owner: str, t: int) -> Tuple[List[Event], int, bool]:
        """(events, wei swept, whether any lot moved)."""
        events, swept, moved = [], 0, False
        while self.charge and (t >= self.charge[0].expiry or self.charge[0].used == self.charge[0].amount):
            lot, moved = self.charge.pop(0), True
            if t >= lot.expiry:
                swept += lot.amount - lot.used
                events.append(("LotExpired", {"owner": owner, "lot": lot.slot, "remainder": lot.amount - lot.used}))
            else:
                self.spent.insert(0, lot)
        kept = []
        for lot in self.spent:
            if t >= lot.expiry:
                events.append(("LotExpired", {"owner": owner, "lot": lot.slot, "remainder": lot.amount - lot.used}))
                moved = True
            else:
                kept.append(lot)
        self.spent = kept
        self.expired += swept
        return events, swept, moved

    def record(self, owner: str, t: int, policy: ReleasePolicy, low: int) -> List[Event]:
        status = self.status_at(t, policy, low)
        events = [] if status == self.status else [("StatusChanged", {"owner": owner, "old": self.status, "new": status})]
        self.status = status
        return events

    def add(self, owner: str, amount: int, t: int, validity: int, max_live: int) -> Tuple[int, List[Event]]:
        """A deposit or grant after `settle` (the caller checks the limits)."""
        taken = {lot.slot for lot in self.stored}
        slot = min(set(range(max_live)) - taken)
        lot = Lot(slot, amount, 0, t, t + validity)
        self.charge.insert(sum(1 for other in self.charge if other.expiry <= lot.expiry), lot)
        events = [] if self.opened else [("AccountOpened", {"owner": owner})]
        self.opened = True
        self.deposited += amount
        self.last_expiry = max(self.last_expiry, lot.expiry)
        events.append(("LotDeposited", {"owner": owner, "lot": slot, "amount": amount, "start": t,
                                        "expiry": t + validity}))
        return slot, events

    def words(self, anchor: int, policy: ReleasePolicy) -> Tuple[Head, Totals]:
        """head0 (links left to the writer) and head1 as the vault stores them, the line
        anchored at `anchor` (no charge-chain lot expired by then)."""
        line = Line(sum(ref_term(lot, anchor, policy) for lot in self.charge),
                    sum(ref_rate(lot, policy) for lot in self.charge), anchor)
        flags = (FLAG_OPENED if self.opened else 0) | (FLAG_FROZEN if self.frozen else 0)
        return Head(line=line, status=self.status, flags=flags), Totals(self.deposited, self.expired, self.last_expiry)


# -- stored accounts -------------------------------------------------------------------------

amounts = st.one_of(st.integers(1, 1000), st.integers(10**15, 10**19),
                    st.integers(AMOUNT_LIMIT - 1000, AMOUNT_LIMIT - 1))
policies = st.builds(
    ReleasePolicy,
    st.sampled_from([Consumption.UNIFORM, Consumption.UPFRONT]),
    st.one_of(st.sampled_from([0, 1, 5000, 9999, BPS_DENOMINATOR]), st.integers(0, BPS_DENOMINATOR)),
)


@st.composite
def lot_in_charge(draw, slot, anchor, policy, low_time):
    """A lot started by the anchor, unexpired then, used no more than released then."""
    amount = draw(amounts)
    start = anchor - draw(st.one_of(st.integers(0, 100), st.integers(0, anchor - low_time)))
    expiry = min(anchor + draw(st.one_of(st.integers(1, 200), st.integers(1, 2 * 10**7))), TIME_LIMIT - 1)
    cap = ref_released(Lot(slot, amount, 0, start, expiry), anchor, policy)
    used = draw(st.one_of(st.just(0), st.just(cap), st.integers(max(0, cap - 1000), cap), st.integers(0, cap)))
    return Lot(slot, amount, min(used, amount), start, expiry)


@st.composite
def lot_spent(draw, slot, anchor, policy, low_time):
    """A lot used up before the anchor and still unexpired then: release rate 0."""
    start = anchor - draw(st.integers(0, min(anchor - low_time, 10**6)))
    expiry = min(anchor + draw(st.integers(1, 2 * 10**7)), TIME_LIMIT - 1)
    span = expiry - start
    if policy.mode == Consumption.UNIFORM:
        share = BPS_DENOMINATOR - policy.initial_release_bps  # rate 0: (A − R0) < span
        top = span * BPS_DENOMINATOR // share if share else AMOUNT_LIMIT - 1
        amount = draw(st.integers(1, max(1, min(top // 2, AMOUNT_LIMIT - 1))))
    else:
        amount = draw(amounts)
    lot = Lot(slot, amount, amount, start, expiry)
    return lot if ref_rate(lot, policy) == 0 else None


@st.composite
def stored_accounts(draw, low_time, high_time):
    """(policy, anchor, t, RefAccount): an account as the vault could hold it after its last
    update at `anchor`, read at block time t >= anchor (lots may have expired since)."""
    policy = draw(policies)
    anchor = draw(st.integers(low_time + 10, high_time))
    t = anchor + draw(st.one_of(st.just(0), st.integers(0, 300), st.integers(0, 3 * 10**7)))
    t = min(t, TIME_LIMIT - 2)
    slots = draw(st.lists(st.integers(0, LOTS_CAPACITY - 1), max_size=8, unique=True))
    split = draw(st.integers(0, len(slots)))
    charge = [draw(lot_in_charge(slot, anchor, policy, low_time)) for slot in slots[:split]]
    spent = [lot for lot in (draw(lot_spent(slot, anchor, policy, low_time)) for slot in slots[split:]) if lot]
    account = RefAccount(charge=sorted(charge, key=lambda lot: (lot.expiry, lot.start)), spent=spent)
    account.opened = bool(account.stored) or draw(st.booleans())
    if not account.opened:
        return policy, anchor, t, account
    account.frozen = draw(st.integers(0, 4)) == 0
    remaining = sum(lot.amount - lot.used for lot in account.stored)
    charged = sum(lot.used for lot in account.stored) + draw(st.integers(0, 10**20))
    account.expired = draw(st.integers(0, 10**20))
    account.deposited = charged + account.expired + remaining
    account.last_expiry = max([lot.expiry for lot in account.stored] + [draw(st.integers(0, anchor))])
    account.status = draw(st.sampled_from(range(6)))
    return policy, anchor, t, account
