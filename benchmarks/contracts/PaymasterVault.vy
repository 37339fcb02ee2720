# pragma version ~=0.4.3
# pragma evm-version cancun
"""
@title PaymasterVault
@notice The in-EVM alternative to the native fee hook, for benchmark 3 only: the executor
        calls `charge(payer, fee, tip, gasUsed)` as a system message after each transaction,
        the way an ERC-4337 paymaster's postOp settles a user operation.
@dev Same storage layout as contracts/FeeVault.vy (contracts/LAYOUT.md), same lot math and
     charge order as fee_plugin/lots.py and fee_plugin/vault.py, same events in the same
     order (LotExpired*, LotCharged*, FeeCharged, StatusChanged?), same ETH moves (tip to
     the coinbase, base fee and swept remainders to the treasury). The benchmark checks that
     it leaves exactly the vault words, balances and logs the native hook leaves.
"""

SYSTEM: constant(address) = 0xffffFFFfFFffffffffffffffFfFFFfffFFFfFFfE
LOTS_CAPACITY: constant(uint256) = 64
BPS: constant(uint256) = 10000
MASK_88: constant(uint256) = 2**88 - 1
MASK_40: constant(uint256) = 2**40 - 1
MASK_96: constant(uint256) = 2**96 - 1
MASK_64: constant(uint256) = 2**64 - 1
FLAG_OPENED: constant(uint256) = 1
FLAG_FROZEN: constant(uint256) = 2

STATUS_NONE: constant(uint8) = 0
STATUS_ACTIVE: constant(uint8) = 1
STATUS_LOW: constant(uint8) = 2
STATUS_EXHAUSTED: constant(uint8) = 3
STATUS_EXPIRED: constant(uint8) = 4
STATUS_FROZEN: constant(uint8) = 5

struct Account:
    head0: uint256  # charged(96) | available(96) | liveMask(64)
    head1: uint256  # deposited(96) | expired(96) | status(8) | flags(8) | 0(48)
    lots: uint256[64]  # amount(88) | used(88) | start(40) | expiry(40); 0 = free

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


@internal
@pure
def _lot_available(word: uint256, t: uint256, mode: uint256, bps: uint256) -> uint256:
    amount: uint256 = (word >> 168) & MASK_88
    used: uint256 = (word >> 80) & MASK_88
    start: uint256 = (word >> 40) & MASK_40
    expiry: uint256 = word & MASK_40
    if t >= expiry:
        return 0
    released: uint256 = amount
    if mode == 0:
        initial: uint256 = amount * bps // BPS
        elapsed: uint256 = 0
        if t > start:
            elapsed = t - start
        released = initial + (amount - initial) * elapsed // (expiry - start)
    if released <= used:
        return 0
    return released - used


@external
def charge(payer: address, fee: uint256, tip: uint256, gasUsed: uint256):
    """Sweep the payer's expired lots, take `fee` from its live lots (earliest expiry
    first, then oldest start, then lowest slot), record totals, available and status,
    and pay the tip to the coinbase and the rest to the treasury out of this vault."""
    assert msg.sender == SYSTEM, "only the executor"
    t: uint256 = block.timestamp
    head0: uint256 = self.accounts[payer].head0
    head1: uint256 = self.accounts[payer].head1
    mask: uint256 = head0 & MASK_64
    mode: uint256 = self.consumptionMode
    bps: uint256 = self.initialReleaseBps

    # Read every live lot word once; sweep the expired ones.
    words: uint256[64] = empty(uint256[64])
    live: uint256 = 0
    swept: uint256 = 0
    for i: uint256 in range(LOTS_CAPACITY):
        if mask >> i == 0:
            break
        if (mask >> i) & 1 == 1:
            word: uint256 = self.accounts[payer].lots[i]
            if t >= word & MASK_40:
                remainder: uint256 = ((word >> 168) & MASK_88) - ((word >> 80) & MASK_88)
                swept += remainder
                self.accounts[payer].lots[i] = 0
                log LotExpired(owner=payer, lot=i, remainder=remainder)
            else:
                words[i] = word
                live |= 1 << i

    # Allocate the fee in charge order (selection over the live lots).
    remaining: uint256 = fee
    todo: uint256 = live
    for _k: uint256 in range(LOTS_CAPACITY):
        if remaining == 0 or todo == 0:
            break
        best: uint256 = 0
        best_key: uint256 = max_value(uint256)
        for i: uint256 in range(LOTS_CAPACITY):
            if todo >> i == 0:
                break
            if (todo >> i) & 1 == 1:
                key: uint256 = ((words[i] & MASK_40) << 80) | (((words[i] >> 40) & MASK_40) << 40) | i
                if key < best_key:
                    best_key = key
                    best = i
        todo = todo & ~(1 << best)
        take: uint256 = min(self._lot_available(words[best], t, mode, bps), remaining)
        if take > 0:
            words[best] = words[best] + (take << 80)
            self.accounts[payer].lots[best] = words[best]
            remaining -= take
            log LotCharged(payer=payer, lot=best, amount=take)
    assert remaining == 0, "insufficient prepaid fee"

    # Record totals, available balance and status.
    available: uint256 = 0
    for i: uint256 in range(LOTS_CAPACITY):
        if live >> i == 0:
            break
        if (live >> i) & 1 == 1:
            available += self._lot_available(words[i], t, mode, bps)
    flags: uint256 = (head1 >> 48) & 255
    status: uint8 = STATUS_ACTIVE
    if flags & FLAG_OPENED == 0:
        status = STATUS_NONE
    elif flags & FLAG_FROZEN != 0:
        status = STATUS_FROZEN
    elif live == 0:
        status = STATUS_EXPIRED
    elif available == 0:
        status = STATUS_EXHAUSTED
    elif available < self.lowBalance:
        status = STATUS_LOW
    charged: uint256 = ((head0 >> 160) & MASK_96) + fee
    new_head0: uint256 = (charged << 160) | (available << 64) | live
    if new_head0 != head0:
        self.accounts[payer].head0 = new_head0
    expired: uint256 = ((head1 >> 64) & MASK_96) + swept
    new_head1: uint256 = (head1 & ~(2**160 - 1)) | (expired << 64) | (convert(status, uint256) << 56) | (flags << 48)
    if new_head1 != head1:
        self.accounts[payer].head1 = new_head1
    log FeeCharged(payer=payer, fee=fee, gasUsed=gasUsed, availableAfter=available, status=status)
    old: uint8 = convert((head1 >> 56) & 255, uint8)
    if old != status:
        log StatusChanged(owner=payer, old=old, new=status)

    # Move the ETH out of the vault: tip to the block's coinbase, the rest to the treasury.
    if tip > 0:
        send(block.coinbase, tip)
    if fee - tip + swept > 0:
        send(self.treasury, fee - tip + swept)
