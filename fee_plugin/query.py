"""Read-only queries at the head block, with the head block's own context.

py-evm's call path (`get_transaction_result`) executes in a fresh child header stamped with
the wall clock, so a view that depends on block.timestamp (lot release) would disagree with
the head. These helpers execute on the head's state with the head header, as geth's
eth_call "latest" does.
"""
from dataclasses import dataclass
from typing import Any, Optional, Tuple

from eth.abc import BlockHeaderAPI, ChainAPI, ComputationAPI
from eth.constants import ZERO_ADDRESS
from eth.vm.spoof import SpoofTransaction
from eth_abi import decode, encode
from eth_typing import Address
from eth_utils import to_canonical_address

from .artifact import vault_function
from .layout import LOTS_OFFSET, NO_LOT, Head, Totals, unpack_lot
from .lots import (
    LOTS_CAPACITY,
    Lot,
    ReleasePolicy,
    Status,
    account_available,
    account_status,
    is_expired,
    line_without,
    lot_available,
    released,
    require,
)
from .vault import load_account, reader

CALL_GAS = 30_000_000


class CallError(Exception):
    """A read-only call that reverted or failed; carries the EVM error."""


@dataclass(frozen=True)
class LotView:
    slot: int
    amount_wei: int
    used_wei: int
    start: int
    expiry: int
    released_wei: int
    available_wei: int
    expired: bool


@dataclass(frozen=True)
class StoredAccount:
    """Everything the vault stores for an owner, both lot chains read whole (views only:
    this is the O(lots) read a charge never does)."""

    owner: Address
    head: Head
    totals: Totals
    charge_lots: Tuple[Lot, ...]  # lots that may still pay, in charge order
    spent_lots: Tuple[Lot, ...]  # used up, waiting for their expiry (chain order: newest first)

    @property
    def lots(self) -> Tuple[Lot, ...]:
        return self.charge_lots + self.spent_lots

    @property
    def charged_wei(self) -> int:
        """Lifetime fees, derived: deposited = charged + expired + Σ (A − u) over stored lots."""
        return self.totals.deposited - self.totals.expired - sum(lot.remaining for lot in self.lots)

    def available(self, t: int, policy: ReleasePolicy) -> int:
        """From the release line, checked against the sum over the lots (which must agree)."""
        expired = [lot for lot in self.charge_lots if is_expired(lot, t)]
        line_wei = line_without(self.head.line, expired, t, policy).available
        require(line_wei == account_available(self.charge_lots, t, policy),
                f"{self.owner.hex()}: release line disagrees with the lots at {t}")
        return line_wei

    def status(self, t: int, policy: ReleasePolicy, low_balance_wei: int) -> Status:
        head = self.head
        return account_status(head.opened, head.frozen, t >= self.totals.last_expiry,
                              self.available(t, policy), low_balance_wei)


def read_stored_account(state, vault: Address, owner: Address) -> StoredAccount:
    read = reader(state, vault, owner)
    account = load_account(state, vault, owner).with_totals(read)
    spent, link_ = [], account.head.spent
    while link_ != NO_LOT:
        require(len(spent) < LOTS_CAPACITY, "spent chain longer than the capacity")
        word = unpack_lot(link_ - 1, read(LOTS_OFFSET + link_ - 1))
        spent.append(word.lot)
        link_ = word.next
    return StoredAccount(owner, account.head, account.totals,
                         tuple(word.lot for word in account.lots), tuple(spent))


@dataclass(frozen=True)
class FeeAccountView:
    """An account as a user or regulator sees it at one block."""

    address: Address
    block_number: int
    timestamp: int
    status: Status
    available_wei: int
    frozen: bool
    lots: Tuple[LotView, ...]  # lots that may still pay in charge order, then used-up ones
    deposited_wei: int
    charged_wei: int
    expired_wei: int  # swept remainders
    recorded_available_wei: int  # as recorded by the last update of the account,
    recorded_status: Status  # ...at block time recorded_at (time alone moves both since)
    recorded_at: int

    @property
    def remaining_wei(self) -> int:
        """Σ (A − u) over stored lots: what the vault still holds for this account."""
        return sum(lot.amount_wei - lot.used_wei for lot in self.lots)


def _head_state(chain: ChainAPI, header: Optional[BlockHeaderAPI] = None):
    header = chain.get_canonical_head() if header is None else header
    vm = chain.get_vm(header)
    return vm.build_state(
        chain.chaindb.db, header, vm.chain_context, vm.previous_hashes
    ), header


def fee_account(chain: ChainAPI, address: Any, header: Optional[BlockHeaderAPI] = None) -> FeeAccountView:
    """The fee account at the head block (or `header`), at that block's timestamp."""
    owner = to_canonical_address(address)
    state, header = _head_state(chain, header)
    cfg = chain.get_vm(header).fee_genesis.fee
    stored = read_stored_account(state, cfg.vault, owner)
    t = header.timestamp
    policy = cfg.release_policy
    lots = tuple(
        LotView(
            slot=lot.slot,
            amount_wei=lot.amount,
            used_wei=lot.used,
            start=lot.start,
            expiry=lot.expiry,
            released_wei=released(lot, t, policy),
            available_wei=lot_available(lot, t, policy),
            expired=is_expired(lot, t),
        )
        for lot in stored.lots
    )
    head = stored.head
    return FeeAccountView(
        address=owner,
        block_number=header.block_number,
        timestamp=t,
        status=stored.status(t, policy, cfg.low_balance_wei),
        available_wei=stored.available(t, policy),
        frozen=head.frozen,
        lots=lots,
        deposited_wei=stored.totals.deposited,
        charged_wei=stored.charged_wei,
        expired_wei=stored.totals.expired,
        recorded_available_wei=head.line.available,
        recorded_status=Status(head.status),
        recorded_at=head.line.anchor,
    )


def call_latest(
    chain: ChainAPI,
    to: Any,
    data: bytes,
    sender: Any = ZERO_ADDRESS,
    gas: int = CALL_GAS,
    header: Optional[BlockHeaderAPI] = None,
    value: int = 0,
) -> ComputationAPI:
    """Execute a read-only call on the head state with the head's block context.

    Nothing is persisted and nothing is charged (gas price 0). Returns the computation.
    """
    header = chain.get_canonical_head() if header is None else header
    call_header = header.copy(base_fee_per_gas=0) if hasattr(header, "base_fee_per_gas") else header
    state, _ = _head_state(chain, call_header)
    snapshot = state.snapshot()
    try:
        return execute_call(chain.get_vm(header), state, to, data, sender, gas, value)
    finally:
        state.revert(snapshot)


def execute_call(
    vm, state, to: Any, data: bytes, sender: Any = ZERO_ADDRESS, gas: int = CALL_GAS, value: int = 0
) -> ComputationAPI:
    """Run an unsigned, free call in `state` (the caller snapshots and reverts)."""
    sender = to_canonical_address(sender)
    unsigned = vm.create_unsigned_transaction(
        nonce=state.get_nonce(sender),
        gas_price=0,
        gas=gas,
        to=to_canonical_address(to),
        value=value,
        data=data,
    )
    return state.costless_execute_transaction(SpoofTransaction(unsigned, from_=sender))


def call_vault(chain: ChainAPI, function: str, *args: Any, header: Optional[BlockHeaderAPI] = None) -> Any:
    """Call a vault view by name like eth_call "latest"; returns the decoded value(s)."""
    fn = vault_function(function)
    cfg = chain.get_vm(header or chain.get_canonical_head()).fee_genesis.fee
    computation = call_latest(
        chain, cfg.vault, fn.selector + encode(fn.input_types, args), header=header
    )
    if computation.is_error:
        raise CallError(f"vault.{function}{args} failed: {computation.error!r}")
    values = decode(fn.output_types, computation.output)
    return values[0] if len(values) == 1 else values
