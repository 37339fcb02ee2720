"""The fee VM's State: py-evm's, plus the write-back cache's journal and flush points.

With `fee_write_back` off (the default) this adds nothing. With it on, the cache
(writeback.py) follows the state's snapshots, reverts and locks, and is flushed before any
state root is computed, so no caller can see a root without the block's charges.
"""
from typing import Optional

from .writeback import FeeRecordCache


class FeeStateMixin:
    fee_write_back = False
    fee_config = None  # the genesis's FeeConfig

    _fee_cache: Optional[FeeRecordCache] = None

    @property
    def fee_cache(self) -> Optional[FeeRecordCache]:
        if not self.fee_write_back:
            return None
        if self._fee_cache is None:
            self._fee_cache = FeeRecordCache()
        return self._fee_cache

    def fee_flush(self, keep: bool = False) -> None:
        """Store the cached charges now (a no-op for the per-transaction design)."""
        cache = self._fee_cache
        if cache is not None:
            cfg = self.fee_config
            cache.flush(self, cfg.vault, cfg.treasury, self.coinbase, keep)

    def snapshot(self):
        snapshot = super().snapshot()
        if self._fee_cache is not None:
            self._fee_cache.mark(snapshot[1])
        return snapshot

    def revert(self, snapshot) -> None:
        super().revert(snapshot)
        if self._fee_cache is not None:
            self._fee_cache.rollback(snapshot[1])

    def lock_changes(self) -> None:
        if self._fee_cache is not None:
            self._fee_cache.lock()
        super().lock_changes()

    def make_state_root(self):
        self.fee_flush()
        return super().make_state_root()

    def persist(self):
        self.fee_flush()
        return super().persist()
