"""The fee VM's State: py-evm's, plus the flush point the write-back design hooks.

The per-transaction design stores every charge at once, so there is nothing to flush;
writeback.WriteBackStateMixin, mixed in before this class for whole-block paths, keeps
the block's charges and overrides `fee_flush`.
"""


class FeeStateMixin:
    fee_config = None  # the genesis's FeeConfig

    def fee_flush(self, keep: bool = False) -> None:
        """Store cached charges now: nothing is cached in the per-transaction design."""
