# pragma version ~=0.4.3
# pragma evm-version cancun
"""
@title PaymasterVault (storage layout v3)
@notice The in-EVM alternative to the native fee hook, for benchmark 3 only: the executor
        calls `charge(payer, fee, tip, gasUsed)` as a system message after each transaction,
        the way an ERC-4337 paymaster's postOp settles a user operation.
@dev Same storage layout as contracts/FeeVault.vy (contracts/LAYOUT.md v3), same lot math
     and charge walk as fee_plugin/lots.py and fee_plugin/vault.py `plan_charge`: sweep the
     charge chain's expired front, draw the fee from the front on, move used-up front lots
     to the spent chain, re-anchor the release line in head0 at block.timestamp. Same events
     in the same order (LotExpired*, LotCharged*, FeeCharged, StatusChanged?), same ETH moves
     (tip to the coinbase, the rest of the fee and the swept remainders to the treasury).
     Like the native charge it reads head0 and the lots it walks, head1 only when it sweeps,
     and never touches the spent chain's expired lots (only FeeVault's functions drop those).
     The benchmark checks that it leaves exactly the vault words, balances and logs the
     native hook leaves.
"""

SYSTEM: constant(address) = 0xffffFFFfFFffffffffffffffFfFFFfffFFFfFFfE
LOTS_CAPACITY: constant(uint256) = 64
BPS: constant(uint256) = 10000
MASK_84: constant(uint256) = 2**84 - 1
MASK_90: constant(uint256) = 2**90 - 1
MASK_96: constant(uint256) = 2**96 - 1
MASK_40: constant(uint256) = 2**40 - 1
MASK_8: constant(uint256) = 255
CLEAR_NEXT: constant(uint256) = max_value(uint256) - 255
FLAG_OPENED: constant(uint256) = 1
FLAG_FROZEN: constant(uint256) = 2

STATUS_ACTIVE: constant(uint8) = 1
STATUS_LOW: constant(uint8) = 2
STATUS_EXHAUSTED: constant(uint8) = 3

struct Account:
    head0: uint256  # available(90) | rate(90) | anchor(40) | first(8) | spent(8) | status(8) | flags(8) | 0(4)
    head1: uint256  # deposited(96) | expired(96) | lastExpiry(40) | 0(24)
    lots: uint256[64]  # amount(84) | used(84) | start(40) | expiry(40) | next(8); 0 = free

# A head0 decoded (as in FeeVault.vy).
struct Head:
    available: uint256
    rate: uint256
    anchor: uint256
    first: uint256
    spent: uint256
    status: uint8
    flags: uint256

event LotExpired:
    owner: indexed(address)
    lot: uint256
    remainder: uint256

event StatusChanged:
    owner: indexed(address)
    old: uint8
    new: uint8

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

# Declaration order fixes the slots, as in FeeVault.vy.
accounts: HashMap[address, Account]
operator: public(address)
treasury: public(address)
lotValidity: public(uint256)
minDeposit: public(uint256)
maxLiveLots: public(uint256)
lowBalance: public(uint256)
consumptionMode: public(uint256)
initialReleaseBps: public(uint256)


# -- packed words (copied from contracts/FeeVault.vy) ------------------------------------

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


# -- lot math (copied from contracts/FeeVault.vy, identical to fee_plugin/lots.py) -------

@internal
@pure
def _terms(word: uint256, mode: uint256, bps: uint256) -> (uint256, uint256):
    """(released at start, rate per second); upfront (mode 1) releases all at once."""
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


# -- the charge --------------------------------------------------------------------------

@external
def charge(payer: address, fee: uint256, tip: uint256, gasUsed: uint256):
    """Sweep the payer's expired front lots, take `fee` from the charge chain's front on,
    move used-up front lots to the spent chain, re-anchor the release line at this block's
    time and record the status; pay the tip to the coinbase and the rest (plus the swept
    remainders) to the treasury out of this vault."""
    assert msg.sender == SYSTEM, "only the executor"
    t: uint256 = block.timestamp
    mode: uint256 = self.consumptionMode
    bps: uint256 = self.initialReleaseBps
    stored_head0: uint256 = self.accounts[payer].head0
    h: Head = self._unpack_head(stored_head0)
    assert h.flags & FLAG_OPENED != 0 and h.flags & FLAG_FROZEN == 0, "only an open, unfrozen account is charged"
    assert t >= h.anchor, "block time before the line's anchor"
    line: uint256 = h.available + h.rate * (t - h.anchor)

    # Sweep the charge chain's expired front: each lot's term I + r*(t - s) - used leaves
    # the line, its rate the rate sum, its remainder goes to head1.expired.
    swept: uint256 = 0
    cur: uint256 = h.first
    word: uint256 = 0
    for i: uint256 in range(LOTS_CAPACITY):
        if cur == 0:
            break
        word = self.accounts[payer].lots[cur - 1]
        if t < self._expiry(word):
            break
        remainder: uint256 = self._amount(word) - self._used(word)
        initial: uint256 = 0
        rate: uint256 = 0
        initial, rate = self._terms(word, mode, bps)
        line -= initial + rate * (t - self._start(word)) - self._used(word)
        h.rate -= rate
        swept += remainder
        self.accounts[payer].lots[cur - 1] = 0
        log LotExpired(owner=payer, lot=cur - 1, remainder=remainder)
        cur = self._next(word)
    h.first = cur

    # Draw the fee from the front on (each lot at most its available, reading further lots
    # only while the fee is not covered) and, in the same walk, move used-up lots at the
    # front to the spent chain (reading on past the drawn lots while the front retires).
    # `word` already holds the first unexpired lot when cur != 0.
    remaining: uint256 = fee
    at_front: bool = True  # every lot walked before `cur` was retired
    for i: uint256 in range(LOTS_CAPACITY):
        if cur == 0 or (remaining == 0 and not at_front):
            break
        slot: uint256 = cur - 1
        if i > 0:
            word = self.accounts[payer].lots[slot]
        following: uint256 = self._next(word)
        changed: bool = False
        if remaining > 0:
            take: uint256 = min(self._lot_available(word, t, mode, bps), remaining)
            if take > 0:
                word += take << 88
                remaining -= take
                changed = True
                log LotCharged(payer=payer, lot=slot, amount=take)
        if at_front and self._used(word) == self._amount(word):
            # Used up before its expiry: its share of the line and its rate are 0.
            word = (word & CLEAR_NEXT) | h.spent
            h.spent = cur
            h.first = following
            changed = True
        else:
            at_front = False
        if changed:
            self.accounts[payer].lots[slot] = word
        cur = following
    assert remaining == 0, "insufficient prepaid fee"

    # head0: the line re-anchored now less the fee, the status as of now.
    line -= fee
    status: uint8 = STATUS_ACTIVE
    if line == 0:
        status = STATUS_EXHAUSTED
    elif line < self.lowBalance:
        status = STATUS_LOW
    old: uint8 = h.status
    h.available = line
    h.anchor = t
    h.status = status
    new_head0: uint256 = self._pack_head(h)
    if new_head0 != stored_head0:
        self.accounts[payer].head0 = new_head0
    if swept > 0:
        head1: uint256 = self.accounts[payer].head1
        expired: uint256 = ((head1 >> 64) & MASK_96) + swept
        self.accounts[payer].head1 = (head1 & ~(MASK_96 << 64)) | (expired << 64)
    log FeeCharged(payer=payer, fee=fee, gasUsed=gasUsed, availableAfter=line, status=status)
    if old != status:
        log StatusChanged(owner=payer, old=old, new=status)

    # Move the ETH out of the vault: tip to the block's coinbase, the rest to the treasury.
    assert tip <= fee, "tip above the fee"
    if tip > 0:
        send(block.coinbase, tip)
    if fee - tip + swept > 0:
        send(self.treasury, fee - tip + swept)
