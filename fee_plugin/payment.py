"""Who pays a transaction's fee: the sender's lots or its ETH balance.

One decision, used by the executor (consensus) and by a node's transaction pool
(admission), so a pool never admits what a block would refuse and never refuses what a
block would take. Pure: the caller reads the account and passes the block time.
"""
import enum
from typing import Optional

from eth.abc import SignedTransactionAPI
from eth.vm.forks.cancun.constants import BLOB_TX_TYPE
from eth_utils import ValidationError, encode_hex, to_checksum_address

from .genesis import FeeConfig
from .lots import release_time

DEPOSIT_SELECTOR = bytes.fromhex("d0e30db0")  # deposit()


class Payment(enum.Enum):
    LOTS = "lots"  # the sender's fee lots pay
    NATIVE = "native"  # the standard Ethereum way, from the ETH balance


class FeeValidationError(ValidationError):
    """A transaction the fee rules make invalid; it is not included and changes nothing."""


class FeeRefusal(FeeValidationError):
    """The sender's fee account cannot pay the transaction's maximum fee.

    The message starts "insufficient funds for gas" (the text wallets and ethers recognise
    for this case); the numbers travel along for RPC error data. `released_at` is the block
    time at which enough is released, None if the current lots never release enough.
    """

    def __init__(
        self, message: str, available_wei: int, required_wei: int, released_at: Optional[int]
    ) -> None:
        super().__init__(message)
        self.available_wei = available_wei
        self.required_wei = required_wei
        self.released_at = released_at


def describe(tx: SignedTransactionAPI) -> str:
    return f"transaction {encode_hex(tx.hash)} from {to_checksum_address(tx.sender)}"


def max_fee_wei(tx: SignedTransactionAPI) -> int:
    """The most the transaction can be charged (legacy: gas_price is max_fee_per_gas)."""
    return tx.gas * tx.max_fee_per_gas


def is_bootstrap(cfg: FeeConfig, tx: SignedTransactionAPI) -> bool:
    """Vault calls that must work without fee credit, so they may be paid natively:
    a user's deposit (how the first lot is bought) and any operator call (grants,
    freezes and settings must not depend on the operator's own fee credit)."""
    return tx.to == cfg.vault and (tx.data[:4] == DEPOSIT_SELECTOR or tx.sender == cfg.operator)


def choose_payment(
    cfg: FeeConfig, tx: SignedTransactionAPI, account, t: int, required_wei: int, read=None
) -> Payment:
    """LOTS when the sender's account (as stored, read by the caller up to its first lot
    unexpired at `t`) can pay `required_wei` at block time `t`, else NATIVE for the
    transactions allowed to pay natively; anything else is refused with a
    FeeValidationError saying why (`read` completes the account for that message)."""
    header = account.head
    available_wei = account.available_at(t, cfg.release_policy)
    can_pay = header.opened and not header.frozen and available_wei >= required_wei
    if can_pay and tx.type_id != BLOB_TX_TYPE:
        return Payment.LOTS
    if is_bootstrap(cfg, tx):
        return Payment.NATIVE
    if not header.opened and cfg.no_account == "native":
        return Payment.NATIVE
    raise refusal(cfg, tx, account if read is None else account.read_all(read), t,
                  available_wei, required_wei)


def refusal(
    cfg: FeeConfig, tx: SignedTransactionAPI, account, t: int, available_wei: int, required_wei: int
) -> FeeValidationError:
    header = account.head
    if not header.opened:
        return FeeRefusal(
            f"insufficient funds for gas: {describe(tx)}: sender has no fee account "
            "(deposit into the vault first)",
            0, required_wei, None,
        )
    if header.frozen:
        return FeeValidationError(f"{describe(tx)}: sender's fee account is frozen")
    if tx.type_id == BLOB_TX_TYPE:
        return FeeValidationError(f"{describe(tx)}: blob transactions cannot be paid from fee lots")
    when = release_time([word.lot for word in account.lots], required_wei, t, cfg.release_policy)
    release = (
        f"enough is released at block time {when}"
        if when is not None
        else "the current lots never release enough"
    )
    return FeeRefusal(
        f"insufficient funds for gas: {describe(tx)}: prepaid fee available {available_wei} wei "
        f"< required {required_wei} wei (gas {tx.gas} x max fee {tx.max_fee_per_gas}) at "
        f"block time {t}; {release}",
        available_wei, required_wei, when,
    )
