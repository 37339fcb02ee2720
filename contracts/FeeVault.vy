# pragma version ~=0.4.3
# pragma evm-version cancun
"""
@title FeeVault (storage layout v3)
@notice Prepaid, earmarked fee accounts. Every deposit is a fee lot released linearly over
        its own validity; the node's executor hook charges transaction fees from the lots.
        There is no withdrawal and no way to move fee credit between users.
@dev Predeployed by the genesis loader (runtime code + storage), so there is no
     constructor. Storage layout is consensus format: see contracts/LAYOUT.md. Lots are
     two linked chains (the charge chain in charge order, the spent chain) and head0
     holds the account's release line, so the hook's charge never walks all lots. Every
     loop is bounded by LOTS_CAPACITY.
"""

LOTS_CAPACITY: constant(uint256) = 64
AMOUNT_LIMIT: constant(uint256) = 2**84
TIME_LIMIT: constant(uint256) = 2**40
TOTAL_LIMIT: constant(uint256) = 2**96
BPS: constant(uint256) = 10000
MASK_84: constant(uint256) = 2**84 - 1
MASK_90: constant(uint256) = 2**90 - 1
MASK_96: constant(uint256) = 2**96 - 1
MASK_40: constant(uint256) = 2**40 - 1
MASK_8: constant(uint256) = 255
CLEAR_NEXT: constant(uint256) = max_value(uint256) - 255
FLAG_OPENED: constant(uint256) = 1
FLAG_FROZEN: constant(uint256) = 2

# Status codes; the order is part of the ABI.
STATUS_NONE: constant(uint8) = 0
STATUS_ACTIVE: constant(uint8) = 1
STATUS_LOW: constant(uint8) = 2
STATUS_EXHAUSTED: constant(uint8) = 3
STATUS_EXPIRED: constant(uint8) = 4
STATUS_FROZEN: constant(uint8) = 5

struct Account:
    head0: uint256  # available(90) | rate(90) | anchor(40) | first(8) | spent(8) | status(8) | flags(8) | 0(4)
    head1: uint256  # deposited(96) | expired(96) | lastExpiry(40) | 0(24)
    lots: uint256[64]  # amount(84) | used(84) | start(40) | expiry(40) | next(8); 0 = free

# A head0 decoded: the release line of the charge chain, the chains' first links.
struct Head:
    available: uint256
    rate: uint256
    anchor: uint256
    first: uint256
    spent: uint256
    status: uint8
    flags: uint256

event AccountOpened:
    owner: indexed(address)

event LotDeposited:
    owner: indexed(address)
    lot: uint256
    amount: uint256
    start: uint256
    expiry: uint256

event LotExpired:
    owner: indexed(address)
    lot: uint256
    remainder: uint256

event StatusChanged:
    owner: indexed(address)
    old: uint8
    new: uint8

# Emitted by the executor hook from this address (declared here so clients decode them).
event FeeCharged:
    payer: indexed(address)
    fee: uint256
    gasUsed: uint256
    availableAfter: uint256
    status: uint8

event LotCharged:
    payer: indexed(address)
    lot: uint256
    amount: uint256

event LotValidityChanged:
    old: uint256
    new: uint256

event MinDepositChanged:
    old: uint256
    new: uint256

# Declaration order fixes the slots (LAYOUT.md): do not reorder.
accounts: HashMap[address, Account]
operator: public(address)
treasury: public(address)
lotValidity: public(uint256)
minDeposit: public(uint256)
maxLiveLots: public(uint256)
lowBalance: public(uint256)
consumptionMode: public(uint256)
initialReleaseBps: public(uint256)


# -- packed words -----------------------------------------------------------------------

@internal
@pure
def _amount(word: uint256) -> uint256:
    return (word >> 172) & MASK_84


@internal
@pure
def _used(word: uint256) -> uint256:
    return (word >> 88) & MASK_84


@internal
@pure
def _start(word: uint256) -> uint256:
    return (word >> 48) & MASK_40


@internal
@pure
def _expiry(word: uint256) -> uint256:
    return (word >> 8) & MASK_40


@internal
@pure
def _next(word: uint256) -> uint256:
    return word & MASK_8


@internal
@pure
def _unpack_head(word: uint256) -> Head:
    return Head(
        available=(word >> 166) & MASK_90,
        rate=(word >> 76) & MASK_90,
        anchor=(word >> 36) & MASK_40,
        first=(word >> 28) & MASK_8,
        spent=(word >> 20) & MASK_8,
        status=convert((word >> 12) & MASK_8, uint8),
        flags=(word >> 4) & MASK_8,
    )


@internal
@pure
def _pack_head(h: Head) -> uint256:
    return ((h.available << 166) | (h.rate << 76) | (h.anchor << 36) | (h.first << 28)
            | (h.spent << 20) | (convert(h.status, uint256) << 12) | (h.flags << 4))


# -- lot math (identical to fee_plugin/lots.py) ----------------------------------------

@internal
@pure
def _terms(word: uint256, mode: uint256, bps: uint256) -> (uint256, uint256):
    """(released at start, rate per second): r = (A - A*bps//10000) // (e - s), the
    rounding remainder released at the start; upfront (mode 1) releases all at once."""
    amount: uint256 = self._amount(word)
    if mode != 0:
        return amount, 0
    span: uint256 = self._expiry(word) - self._start(word)
    rate: uint256 = (amount - amount * bps // BPS) // span
    return amount - rate * span, rate


@internal
@pure
def _lot_available(word: uint256, t: uint256, mode: uint256, bps: uint256) -> uint256:
    """What lot `word` may still pay at time t: 0 once expired (t >= expiry), else
    I + r*(t - s) - used (t clamped to the start)."""
    if t >= self._expiry(word):
        return 0
    initial: uint256 = 0
    rate: uint256 = 0
    initial, rate = self._terms(word, mode, bps)
    start: uint256 = self._start(word)
    released: uint256 = initial
    if t > start:
        released += rate * (t - start)
    used: uint256 = self._used(word)
    if released <= used:
        return 0
    return released - used


@internal
@pure
def _line_term(word: uint256, t: uint256, mode: uint256, bps: uint256) -> uint256:
    """The lot's share of the line at t >= its start, extended past expiry."""
    initial: uint256 = 0
    rate: uint256 = 0
    initial, rate = self._terms(word, mode, bps)
    return initial + rate * (t - self._start(word)) - self._used(word)


@internal
@view
def _available(owner: address, t: uint256) -> uint256:
    """The line at t less the charge chain's lots already expired at t (unswept)."""
    h: Head = self._unpack_head(self.accounts[owner].head0)
    if t < h.anchor:
        return 0
    mode: uint256 = self.consumptionMode
    bps: uint256 = self.initialReleaseBps
    total: uint256 = h.available + h.rate * (t - h.anchor)
    cur: uint256 = h.first
    for i: uint256 in range(LOTS_CAPACITY):
        if cur == 0:
            break
        word: uint256 = self.accounts[owner].lots[cur - 1]
        if t < self._expiry(word):
            break
        total -= self._line_term(word, t, mode, bps)
        cur = self._next(word)
    return total


@internal
@view
def _status_of(h: Head, t: uint256, available: uint256, last_expiry: uint256) -> uint8:
    if h.flags & FLAG_OPENED == 0:
        return STATUS_NONE
    if h.flags & FLAG_FROZEN != 0:
        return STATUS_FROZEN
    if t >= last_expiry:
        return STATUS_EXPIRED
    if available == 0:
        return STATUS_EXHAUSTED
    if available < self.lowBalance:
        return STATUS_LOW
    return STATUS_ACTIVE


@internal
def _settle(owner: address) -> (Head, uint256, bool):
    """Bring the account to this block's time: sweep the charge chain's expired front,
    move its used-up front to the spent chain, drop expired spent lots. Writes the lots
    and head1; returns head0 re-anchored now (for the caller to store), the wei swept (the
    caller sends it to the treasury last) and whether any lot moved."""
    t: uint256 = block.timestamp
    mode: uint256 = self.consumptionMode
    bps: uint256 = self.initialReleaseBps
    h: Head = self._unpack_head(self.accounts[owner].head0)
    line: uint256 = h.available + h.rate * (t - h.anchor)
    swept: uint256 = 0
    moved: bool = False
    for i: uint256 in range(LOTS_CAPACITY):
        if h.first == 0:
            break
        slot: uint256 = h.first - 1
        word: uint256 = self.accounts[owner].lots[slot]
        if t >= self._expiry(word):
            remainder: uint256 = self._amount(word) - self._used(word)
            initial: uint256 = 0
            rate: uint256 = 0
            initial, rate = self._terms(word, mode, bps)
            line -= initial + rate * (t - self._start(word)) - self._used(word)
            h.rate -= rate
            swept += remainder
            self.accounts[owner].lots[slot] = 0
            log LotExpired(owner=owner, lot=slot, remainder=remainder)
        elif self._used(word) == self._amount(word):
            # Used up (its share of the line is 0): it waits on the spent chain.
            self.accounts[owner].lots[slot] = (word & CLEAR_NEXT) | h.spent
            h.spent = slot + 1
        else:
            break
        h.first = self._next(word)
        moved = True
    previous: uint256 = 0
    cur: uint256 = h.spent
    for i: uint256 in range(LOTS_CAPACITY):
        if cur == 0:
            break
        word: uint256 = self.accounts[owner].lots[cur - 1]
        following: uint256 = self._next(word)
        if t >= self._expiry(word):
            self.accounts[owner].lots[cur - 1] = 0
            log LotExpired(owner=owner, lot=cur - 1, remainder=self._amount(word) - self._used(word))
            if previous == 0:
                h.spent = following
            else:
                self.accounts[owner].lots[previous - 1] = (self.accounts[owner].lots[previous - 1] & CLEAR_NEXT) | following
            moved = True
        else:
            previous = cur
        cur = following
    h.available = line
    h.anchor = t
    if swept > 0:
        head1: uint256 = self.accounts[owner].head1
        expired: uint256 = ((head1 >> 64) & MASK_96) + swept
        self.accounts[owner].head1 = (head1 & ~(MASK_96 << 64)) | (expired << 64)
    return h, swept, moved


@internal
def _record(owner: address, h: Head):
    """Store head0 `h` (anchored now) with the status as of now; log a status move."""
    status: uint8 = self._status_of(h, block.timestamp, h.available, (self.accounts[owner].head1 >> 24) & MASK_40)
    if status != h.status:
        log StatusChanged(owner=owner, old=h.status, new=status)
        h.status = status
    self.accounts[owner].head0 = self._pack_head(h)


@internal
def _pay_treasury(swept: uint256):
    if swept > 0:
        raw_call(self.treasury, b"", value=swept)


@internal
def _add_lot(owner: address, amount: uint256, validity: uint256):
    assert amount >= self.minDeposit, "deposit below minDeposit"
    assert amount < AMOUNT_LIMIT, "lot amount must be < 2**84 wei"
    assert validity > 0, "validity must be > 0"
    start: uint256 = block.timestamp
    assert start < TIME_LIMIT and validity < TIME_LIMIT - start, "lot expiry must be < 2**40"
    expiry: uint256 = start + validity
    h: Head = empty(Head)
    swept: uint256 = 0
    moved: bool = False
    h, swept, moved = self._settle(owner)

    head1: uint256 = self.accounts[owner].head1
    deposited: uint256 = (head1 >> 160) & MASK_96
    assert deposited + amount < TOTAL_LIMIT, "lifetime deposits must stay < 2**96 wei"
    # Walk both chains: the slots in use, and where the lot goes in charge order (after
    # every lot expiring no later: those all started no later either).
    taken: uint256 = 0
    count: uint256 = 0
    cur: uint256 = h.spent
    for i: uint256 in range(LOTS_CAPACITY):
        if cur == 0:
            break
        taken |= 1 << (cur - 1)
        count += 1
        cur = self._next(self.accounts[owner].lots[cur - 1])
    previous: uint256 = 0
    cur = h.first
    for i: uint256 in range(LOTS_CAPACITY):
        if cur == 0:
            break
        word: uint256 = self.accounts[owner].lots[cur - 1]
        taken |= 1 << (cur - 1)
        count += 1
        if self._expiry(word) <= expiry:
            previous = cur
        cur = self._next(word)
    max_live: uint256 = self.maxLiveLots
    assert count < max_live, "too many live lots (maxLiveLots)"
    slot: uint256 = LOTS_CAPACITY
    for i: uint256 in range(LOTS_CAPACITY):
        if i >= max_live:
            break
        if (taken >> i) & 1 == 0:
            slot = i
            break

    following: uint256 = h.first
    if previous != 0:
        following = self._next(self.accounts[owner].lots[previous - 1])
    word: uint256 = (amount << 172) | (start << 48) | (expiry << 8) | following
    self.accounts[owner].lots[slot] = word
    if previous == 0:
        h.first = slot + 1
    else:
        self.accounts[owner].lots[previous - 1] = (self.accounts[owner].lots[previous - 1] & CLEAR_NEXT) | (slot + 1)
    initial: uint256 = 0
    rate: uint256 = 0
    initial, rate = self._terms(word, self.consumptionMode, self.initialReleaseBps)
    h.available += initial
    h.rate += rate
    if h.flags & FLAG_OPENED == 0:
        h.flags = h.flags | FLAG_OPENED
        log AccountOpened(owner=owner)
    last_expiry: uint256 = max((head1 >> 24) & MASK_40, expiry)
    expired: uint256 = (head1 >> 64) & MASK_96
    self.accounts[owner].head1 = ((deposited + amount) << 160) | (expired << 64) | (last_expiry << 24)
    log LotDeposited(owner=owner, lot=slot, amount=amount, start=start, expiry=expiry)
    self._record(owner, h)
    self._pay_treasury(swept)


# -- user functions --------------------------------------------------------------------

@external
@payable
@nonreentrant
def deposit():
    """Open or top up the caller's fee account with a new lot of msg.value wei."""
    self._add_lot(msg.sender, msg.value, self.lotValidity)


@external
@nonreentrant
def sweepExpired(owner: address) -> uint256:
    """Move expired lots' unused remainder to the treasury. Anyone may call it."""
    if self._unpack_head(self.accounts[owner].head0).flags & FLAG_OPENED == 0:
        return 0
    h: Head = empty(Head)
    swept: uint256 = 0
    moved: bool = False
    h, swept, moved = self._settle(owner)
    if moved:  # nothing expired: nothing is written, the account is not updated
        self._record(owner, h)
        self._pay_treasury(swept)
    return swept


# -- operator functions ----------------------------------------------------------------

@internal
@view
def _only_operator():
    assert msg.sender == self.operator, "only the operator"


@external
@payable
@nonreentrant
def grant(owner: address, validitySeconds: uint256):
    """Issue a lot to `owner` (credit bought off-chain) with its own validity."""
    self._only_operator()
    assert owner != empty(address), "owner is the zero address"
    self._add_lot(owner, msg.value, validitySeconds)


@external
def setLotValidity(seconds: uint256):
    """Validity of lots deposited from now on; existing lots keep theirs."""
    self._only_operator()
    assert seconds > 0, "validity must be > 0"
    assert block.timestamp < TIME_LIMIT and seconds < TIME_LIMIT - block.timestamp, "validity too large: expiry must stay < 2**40"
    log LotValidityChanged(old=self.lotValidity, new=seconds)
    self.lotValidity = seconds


@external
def setMinDeposit(amount: uint256):
    self._only_operator()
    assert amount >= 1 and amount < AMOUNT_LIMIT, "minDeposit must be in [1, 2**84)"
    log MinDepositChanged(old=self.minDeposit, new=amount)
    self.minDeposit = amount


@internal
def _set_frozen(owner: address, frozen: bool):
    self._only_operator()
    assert self._unpack_head(self.accounts[owner].head0).flags & FLAG_OPENED != 0, "no such fee account"
    h: Head = empty(Head)
    swept: uint256 = 0
    moved: bool = False
    h, swept, moved = self._settle(owner)
    if frozen:
        h.flags = h.flags | FLAG_FROZEN
    else:
        h.flags = h.flags & ~FLAG_FROZEN
    self._record(owner, h)
    self._pay_treasury(swept)


@external
@nonreentrant
def freeze(owner: address):
    """Stop `owner`'s lots from paying fees; the credit is kept."""
    self._set_frozen(owner, True)


@external
@nonreentrant
def unfreeze(owner: address):
    self._set_frozen(owner, False)


# -- views -----------------------------------------------------------------------------

@external
@view
def available(owner: address) -> uint256:
    """Fee credit `owner` can spend at this block's timestamp."""
    return self._available(owner, block.timestamp)


@external
@view
def status(owner: address) -> uint8:
    """0 NONE, 1 ACTIVE, 2 LOW, 3 EXHAUSTED, 4 EXPIRED, 5 FROZEN at this block's time."""
    h: Head = self._unpack_head(self.accounts[owner].head0)
    return self._status_of(h, block.timestamp, self._available(owner, block.timestamp),
                           (self.accounts[owner].head1 >> 24) & MASK_40)


@internal
@view
def _stored_lots(owner: address) -> DynArray[uint256, LOTS_CAPACITY]:
    """Slot indexes: the charge chain in charge order, then the spent chain."""
    h: Head = self._unpack_head(self.accounts[owner].head0)
    result: DynArray[uint256, LOTS_CAPACITY] = []
    cur: uint256 = h.first
    for i: uint256 in range(LOTS_CAPACITY):
        if cur == 0:
            break
        result.append(cur - 1)
        cur = self._next(self.accounts[owner].lots[cur - 1])
    cur = h.spent
    for i: uint256 in range(LOTS_CAPACITY):
        if cur == 0 or len(result) == LOTS_CAPACITY:
            break
        result.append(cur - 1)
        cur = self._next(self.accounts[owner].lots[cur - 1])
    return result


@external
@view
def lotCount(owner: address) -> uint256:
    """Stored (unswept) lots, used-up ones included."""
    return len(self._stored_lots(owner))


@external
@view
def liveLots(owner: address) -> DynArray[uint256, LOTS_CAPACITY]:
    """Slot indexes of stored lots: those that may still pay in charge order, then the
    used-up ones waiting for their expiry."""
    return self._stored_lots(owner)


@external
@view
def lot(owner: address, i: uint256) -> (uint256, uint256, uint256, uint256, uint256):
    """(amount, used, start, expiry, available now) of lot slot i; zeros if free."""
    assert i < LOTS_CAPACITY, "lot index out of range"
    word: uint256 = self.accounts[owner].lots[i]
    if word == 0:
        return 0, 0, 0, 0, 0
    return (
        self._amount(word),
        self._used(word),
        self._start(word),
        self._expiry(word),
        self._lot_available(word, block.timestamp, self.consumptionMode, self.initialReleaseBps),
    )


@external
@view
def totals(owner: address) -> (uint256, uint256, uint256):
    """Lifetime (deposited, charged, expired) in wei; charged is derived: deposited less
    swept remainders less what the stored lots still hold."""
    head1: uint256 = self.accounts[owner].head1
    deposited: uint256 = (head1 >> 160) & MASK_96
    expired: uint256 = (head1 >> 64) & MASK_96
    remaining: uint256 = 0
    slots: DynArray[uint256, LOTS_CAPACITY] = self._stored_lots(owner)
    for slot: uint256 in slots:
        word: uint256 = self.accounts[owner].lots[slot]
        remaining += self._amount(word) - self._used(word)
    return deposited, deposited - expired - remaining, expired


@external
@view
def recorded(owner: address) -> (uint256, uint8, uint256):
    """(available, status, block time) as recorded by the last update of the account;
    time alone has moved both since."""
    h: Head = self._unpack_head(self.accounts[owner].head0)
    return h.available, h.status, h.anchor


@external
@view
def isFrozen(owner: address) -> bool:
    return self._unpack_head(self.accounts[owner].head0).flags & FLAG_FROZEN != 0
