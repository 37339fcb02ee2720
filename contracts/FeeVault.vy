# pragma version ~=0.4.3
# pragma evm-version cancun
"""
@title FeeVault
@notice Prepaid, earmarked fee accounts. Every deposit is a fee lot released linearly over
        its own validity; the node's executor hook charges transaction fees from the lots.
        There is no withdrawal and no way to move fee credit between users.
@dev Predeployed by the genesis loader (runtime code + storage), so there is no
     constructor. Storage layout is consensus format: see contracts/LAYOUT.md. Every loop
     is bounded by LOTS_CAPACITY.
"""

LOTS_CAPACITY: constant(uint256) = 64
AMOUNT_LIMIT: constant(uint256) = 2**88
TIME_LIMIT: constant(uint256) = 2**40
TOTAL_LIMIT: constant(uint256) = 2**96
BPS: constant(uint256) = 10000
MASK_88: constant(uint256) = 2**88 - 1
MASK_40: constant(uint256) = 2**40 - 1
MASK_96: constant(uint256) = 2**96 - 1
MASK_64: constant(uint256) = 2**64 - 1
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
    head0: uint256  # charged(96) | available(96) | liveMask(64): what a fee charge changes
    head1: uint256  # deposited(96) | expired(96) | status(8) | flags(8) | 0(48)
    lots: uint256[64]  # amount(88) | used(88) | start(40) | expiry(40); 0 = free

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
    return (word >> 168) & MASK_88


@internal
@pure
def _used(word: uint256) -> uint256:
    return (word >> 80) & MASK_88


@internal
@pure
def _start(word: uint256) -> uint256:
    return (word >> 40) & MASK_40


@internal
@pure
def _expiry(word: uint256) -> uint256:
    return word & MASK_40


@internal
@pure
def _pack_head1(deposited: uint256, expired: uint256, status: uint8, flags: uint256) -> uint256:
    return (deposited << 160) | (expired << 64) | (convert(status, uint256) << 56) | (flags << 48)


# -- lot math (identical to fee_plugin/lots.py) ----------------------------------------

@internal
@pure
def _lot_available(word: uint256, t: uint256, mode: uint256, bps: uint256) -> uint256:
    """What lot `word` may still pay at time t: 0 once expired (t >= expiry); uniform
    (mode 0): R0 = A*bps//10000, released = R0 + (A-R0)*(min(t,e)-s)//(e-s), minus used."""
    amount: uint256 = self._amount(word)
    start: uint256 = self._start(word)
    expiry: uint256 = self._expiry(word)
    used: uint256 = self._used(word)
    if t >= expiry:
        return 0
    released: uint256 = amount
    if mode == 0:
        initial: uint256 = amount * bps // BPS
        elapsed: uint256 = 0
        if t > start:
            elapsed = t - start  # t < expiry here, so min(t, e) = t
        released = initial + (amount - initial) * elapsed // (expiry - start)
    if released <= used:
        return 0
    return released - used


@internal
@view
def _available_and_status(owner: address, t: uint256) -> (uint256, uint8):
    # Read word by word: copying the struct to memory would load all 66 slots.
    flags: uint256 = (self.accounts[owner].head1 >> 48) & 255
    if flags & FLAG_OPENED == 0:
        return 0, STATUS_NONE
    mask: uint256 = self.accounts[owner].head0 & MASK_64
    mode: uint256 = self.consumptionMode
    bps: uint256 = self.initialReleaseBps
    total: uint256 = 0
    unexpired: bool = False
    for i: uint256 in range(LOTS_CAPACITY):
        if mask >> i == 0:
            break
        if (mask >> i) & 1 == 1:
            word: uint256 = self.accounts[owner].lots[i]
            if t < self._expiry(word):
                unexpired = True
                total += self._lot_available(word, t, mode, bps)
    if flags & FLAG_FROZEN != 0:
        return total, STATUS_FROZEN
    if not unexpired:
        return total, STATUS_EXPIRED
    if total == 0:
        return total, STATUS_EXHAUSTED
    if total < self.lowBalance:
        return total, STATUS_LOW
    return total, STATUS_ACTIVE


@internal
def _record(owner: address):
    """Recompute and record available and status after a change; log status moves."""
    available: uint256 = 0
    status: uint8 = STATUS_NONE
    available, status = self._available_and_status(owner, block.timestamp)
    head0: uint256 = self.accounts[owner].head0
    self.accounts[owner].head0 = (head0 & ~(MASK_96 << 64)) | (available << 64)
    head1: uint256 = self.accounts[owner].head1
    old: uint8 = convert((head1 >> 56) & 255, uint8)
    flags: uint256 = (head1 >> 48) & 255
    deposited: uint256 = (head1 >> 160) & MASK_96
    expired: uint256 = (head1 >> 64) & MASK_96
    self.accounts[owner].head1 = self._pack_head1(deposited, expired, status, flags)
    if old != status:
        log StatusChanged(owner=owner, old=old, new=status)


@internal
def _add_lot(owner: address, amount: uint256, validity: uint256):
    assert amount >= self.minDeposit, "deposit below minDeposit"
    assert amount < AMOUNT_LIMIT, "lot amount must be < 2**88 wei"
    assert validity > 0, "validity must be > 0"
    start: uint256 = block.timestamp
    assert start < TIME_LIMIT and validity < TIME_LIMIT - start, "lot expiry must be < 2**40"
    expiry: uint256 = start + validity

    head0: uint256 = self.accounts[owner].head0
    head1: uint256 = self.accounts[owner].head1
    deposited: uint256 = (head1 >> 160) & MASK_96
    assert deposited + amount < TOTAL_LIMIT, "lifetime deposits must stay < 2**96 wei"
    mask: uint256 = head0 & MASK_64
    max_live: uint256 = self.maxLiveLots
    slot: uint256 = LOTS_CAPACITY
    for i: uint256 in range(LOTS_CAPACITY):
        if i >= max_live:
            break
        if (mask >> i) & 1 == 0:
            slot = i
            break
    assert slot < LOTS_CAPACITY, "too many live lots: sweep expired lots first"

    self.accounts[owner].lots[slot] = (amount << 168) | (start << 40) | expiry
    self.accounts[owner].head0 = head0 | (1 << slot)
    head1 = (head1 & ~(MASK_96 << 160)) | ((deposited + amount) << 160)
    if (head1 >> 48) & FLAG_OPENED == 0:
        head1 = head1 | (FLAG_OPENED << 48)
        log AccountOpened(owner=owner)
    self.accounts[owner].head1 = head1
    log LotDeposited(owner=owner, lot=slot, amount=amount, start=start, expiry=expiry)
    self._record(owner)


# -- user functions --------------------------------------------------------------------

@external
@payable
def deposit():
    """Open or top up the caller's fee account with a new lot of msg.value wei."""
    self._add_lot(msg.sender, msg.value, self.lotValidity)


@external
@nonreentrant
def sweepExpired(owner: address) -> uint256:
    """Move expired lots' unused remainder to the treasury. Anyone may call it."""
    t: uint256 = block.timestamp
    head0: uint256 = self.accounts[owner].head0
    mask: uint256 = head0 & MASK_64
    swept: uint256 = 0
    for i: uint256 in range(LOTS_CAPACITY):
        if (mask >> i) & 1 == 1:
            word: uint256 = self.accounts[owner].lots[i]
            if t >= self._expiry(word):
                remainder: uint256 = self._amount(word) - self._used(word)
                swept += remainder
                mask = mask & ~(1 << i)
                self.accounts[owner].lots[i] = 0
                log LotExpired(owner=owner, lot=i, remainder=remainder)
    if swept == 0 and mask == head0 & MASK_64:
        return 0
    self.accounts[owner].head0 = (head0 & ~MASK_64) | mask
    head1: uint256 = self.accounts[owner].head1
    expired: uint256 = ((head1 >> 64) & MASK_96) + swept
    self.accounts[owner].head1 = (head1 & ~(MASK_96 << 64)) | (expired << 64)
    self._record(owner)
    if swept > 0:
        raw_call(self.treasury, b"", value=swept)
    return swept


# -- operator functions ----------------------------------------------------------------

@internal
@view
def _only_operator():
    assert msg.sender == self.operator, "only the operator"


@external
@payable
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
    assert amount >= 1 and amount < AMOUNT_LIMIT, "minDeposit must be in [1, 2**88)"
    log MinDepositChanged(old=self.minDeposit, new=amount)
    self.minDeposit = amount


@external
def freeze(owner: address):
    """Stop `owner`'s lots from paying fees; the credit is kept."""
    self._only_operator()
    head1: uint256 = self.accounts[owner].head1
    assert (head1 >> 48) & FLAG_OPENED != 0, "no such fee account"
    self.accounts[owner].head1 = head1 | (FLAG_FROZEN << 48)
    self._record(owner)


@external
def unfreeze(owner: address):
    self._only_operator()
    head1: uint256 = self.accounts[owner].head1
    assert (head1 >> 48) & FLAG_OPENED != 0, "no such fee account"
    self.accounts[owner].head1 = head1 & ~(FLAG_FROZEN << 48)
    self._record(owner)


# -- views -----------------------------------------------------------------------------

@external
@view
def available(owner: address) -> uint256:
    """Fee credit `owner` can spend at this block's timestamp."""
    total: uint256 = 0
    status: uint8 = STATUS_NONE
    total, status = self._available_and_status(owner, block.timestamp)
    return total


@external
@view
def status(owner: address) -> uint8:
    """0 NONE, 1 ACTIVE, 2 LOW, 3 EXHAUSTED, 4 EXPIRED, 5 FROZEN at this block's time."""
    total: uint256 = 0
    status: uint8 = STATUS_NONE
    total, status = self._available_and_status(owner, block.timestamp)
    return status


@external
@view
def lotCount(owner: address) -> uint256:
    """Live (unswept) lots."""
    mask: uint256 = self.accounts[owner].head0 & MASK_64
    count: uint256 = 0
    for i: uint256 in range(LOTS_CAPACITY):
        count += (mask >> i) & 1
    return count


@external
@view
def liveLots(owner: address) -> DynArray[uint256, LOTS_CAPACITY]:
    """Slot indexes of live lots, ascending."""
    mask: uint256 = self.accounts[owner].head0 & MASK_64
    result: DynArray[uint256, LOTS_CAPACITY] = []
    for i: uint256 in range(LOTS_CAPACITY):
        if (mask >> i) & 1 == 1:
            result.append(i)
    return result


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
    """Lifetime (deposited, charged, expired) in wei."""
    head0: uint256 = self.accounts[owner].head0
    head1: uint256 = self.accounts[owner].head1
    return (head1 >> 160) & MASK_96, (head0 >> 160) & MASK_96, (head1 >> 64) & MASK_96


@external
@view
def recorded(owner: address) -> (uint256, uint8):
    """(available, status) as recorded by the last update of the account."""
    available: uint256 = (self.accounts[owner].head0 >> 64) & MASK_96
    return available, convert((self.accounts[owner].head1 >> 56) & 255, uint8)


@external
@view
def isFrozen(owner: address) -> bool:
    return (self.accounts[owner].head1 >> 48) & FLAG_FROZEN != 0
