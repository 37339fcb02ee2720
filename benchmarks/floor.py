"""The floor side: plain py-evm plus the storage work a recorded charge cannot avoid.

Issue 14's definition, exactly: plain py-evm Prague, plus, for each payer in the block, a
read of the account's header word and of the drawn lot word and a write of both — through
the same state API, in the same vault contract's storage, on the same funded accounts (the
floor chain opens the plugin chain's own database) — with no lot math, no validation, no
logs. Reads happen when a payer's transaction is validated (as the hook reads), writes once
per payer per block before the state root (as the write-back design stores). The drawn lot
is the one the charge chain's head links to. Plain py-evm pays gas natively, so no vault,
treasury or coinbase balance moves are added: plugin / floor then measures the hook's own
code plus its balance moves and logs. A measurement device only: the words it writes are
not a valid record.
"""
from eth.vm.forks import PragueVM

from fee_plugin.layout import account_base_slot, head0_slot, lot_slot

FIRST_SHIFT = 28  # head0's `first` link (contracts/LAYOUT.md); 0: no lot
USED_UNIT = 1 << 88  # one wei more `used` in a lot word


def floor_vm_class(vault: bytes, lot_word: bool = True):
    """A Prague VM class that does the floor's vault storage work for `vault`; without
    `lot_word`, only head0 is read and written (what one stored word per payer per block,
    a layout that keeps no per-lot `used` in storage, would cost)."""

    class FloorExecutor(PragueVM.get_state_class().transaction_executor_class):
        def validate_transaction(self, transaction):
            super().validate_transaction(transaction)
            self.vm_state.floor_read(transaction.sender)

    class FloorState(PragueVM.get_state_class()):
        transaction_executor_class = FloorExecutor
        _floor_words = None

        def floor_read(self, payer: bytes) -> None:
            words = self._floor_words = self._floor_words or {}
            if payer in words:
                return
            base = account_base_slot(payer)
            head = self.get_storage(vault, head0_slot(base))
            first = head >> FIRST_SHIFT & 0xFF
            lot_key = lot_slot(base, first - 1) if first and lot_word else None
            lot = self.get_storage(vault, lot_key) if lot_key is not None else 0
            words[payer] = (head0_slot(base), head, lot_key, lot)

        def _floor_write(self) -> None:
            for payer in sorted(self._floor_words or ()):
                head_key, head, lot_key, lot = self._floor_words[payer]
                self.set_storage(vault, head_key, head ^ 1 << 36)  # another anchor time
                if lot_key is not None:
                    self.set_storage(vault, lot_key, lot + USED_UNIT)
            self._floor_words = None

        def make_state_root(self):
            self._floor_write()
            return super().make_state_root()

        def persist(self):
            self._floor_write()
            return super().persist()

    return PragueVM.configure(__name__="FloorPragueVM" if lot_word else "OneWordFloorPragueVM",
                              _state_class=FloorState)
