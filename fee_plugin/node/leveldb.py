"""LevelDB: a persistent py-evm AtomicDatabaseAPI over plyvel, committed block by block.

py-evm ships only in-memory databases. Wrapping plyvel in `AtomicDB(wrapped_db=...)` would
write an atomic batch key by key, so a crash could leave half a batch on disk. Here every
commit is ONE LevelDB write batch (sync=True), and `block_batch()` widens that unit to a whole
block: everything py-evm writes while importing or mining it lands on disk together or not
at all.

Needs plyvel (`pip install plyvel`; its wheels bundle LevelDB). LevelDB allows one open handle
per directory, so one process owns the database at a time.

Closing releases the plyvel handle, not just the LevelDB lock, and any LevelDB still open at
interpreter exit is closed by an atexit hook. py-evm's dependencies keep databases alive in
class-level caches (trie's `HexaryTrie._cached_create_node_to_db_mapping` is an `lru_cache`
keyed on the trie, hence on its db) until module teardown; a `plyvel.DB`, even a closed one,
freed that late runs Python code in its `__dealloc__` against half-torn-down modules and
prints "Error in sys.excepthook" on the way out. So no `plyvel.DB` may outlive atexit.
"""
import atexit
import logging
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Optional

import plyvel
from eth.abc import AtomicWriteBatchAPI
from eth.db.atomic import AtomicDBWriteBatch
from eth.db.backends.base import BaseAtomicDB
from eth.db.diff import DBDiff, DBDiffTracker, DiffMissingError


def _as_bytes(data: bytes, what: str) -> bytes:
    """`data` as exact `bytes`: plyvel rejects everything else, bytes subclasses included.

    Checked when written, so a bad value fails at the offending call, not at the commit.
    """
    if type(data) is bytes:
        return data
    if isinstance(data, bytes):
        return bytes(data)
    raise TypeError(f"LevelDB {what} must be bytes, got {type(data).__name__}: {data!r}")


class _ReleasedHandle:
    """Stands in for the plyvel handle once a LevelDB is closed; every use of it fails.

    Dropping the real `plyvel.DB` at close (instead of keeping a closed one) is what lets it
    be freed while the interpreter is intact, whoever still references the LevelDB.
    """

    closed = True

    def close(self) -> None:
        pass

    def __getattr__(self, name: str):
        raise RuntimeError("Database is closed")

    def __repr__(self) -> str:
        return "<released plyvel handle>"


_RELEASED = _ReleasedHandle()

# Every LevelDB whose plyvel handle is still held, by id() (a LevelDB, like every py-evm
# database, is a MutableMapping and so unhashable): closed at exit by _close_open_dbs.
_open_dbs: "weakref.WeakValueDictionary[int, LevelDB]" = weakref.WeakValueDictionary()


@atexit.register
def _close_open_dbs() -> None:
    """Release the handles of LevelDBs still alive at exit, before module teardown.

    Runs while the interpreter is fully functional. A block still open here can never
    complete (its code will not run again), so it is dropped, as a crash would drop it.
    """
    for db in list(_open_dbs.values()):
        db._release()


class LevelDBWriteBatch(AtomicDBWriteBatch):
    """py-evm's `AtomicDBWriteBatch`, committed as one LevelDB write batch.

    Reads, pending deletes, KeyError on deleting a key missing from both the batch and the
    database, ValidationError once out of context: all inherited unchanged, so an
    `atomic_batch()` here behaves exactly like one on py-evm's `AtomicDB`. Only the commit
    differs: the parent applies the diff key by key, this hands it to `LevelDB._write_diff`.
    """

    logger = logging.getLogger("fee_plugin.leveldb.LevelDBWriteBatch")

    _write_target_db: "LevelDB" = None

    def __setitem__(self, key: bytes, value: bytes) -> None:
        super().__setitem__(_as_bytes(key, "key"), _as_bytes(value, "value"))

    def _commit(self) -> None:
        self._write_target_db._write_diff(self._diff())


# LevelDB memory-maps every table file it keeps open (up to 1,000 by default), and the pages
# reads touch stay in the process's RSS (file-backed) as the database grows: measured here,
# +9 MiB a minute under load while the anonymous heap stayed flat. 74 is the fewest open
# files LevelDB accepts (it clips smaller values): 64 tables of 2 MiB, so at most 128 MiB
# mapped; a table read after being closed is reopened (index and filter from the page cache).
# With it, a 10-minute run's file-backed RSS grew 0.23 MiB a minute over its last 5 minutes.
MAX_OPEN_FILES = 74


class LevelDB(BaseAtomicDB):
    """A plyvel database as a py-evm `BaseAtomicDB`.

    Outside `block_batch()`, a direct write is durable when it returns and an
    `atomic_batch()` reaches disk as one synced LevelDB write batch. Inside `block_batch()`,
    both go to an in-memory overlay that reads see, written as one batch when the block ends.
    """

    logger = logging.getLogger("fee_plugin.leveldb.LevelDB")

    # Called with (puts, deletes) after each committed write, from the writing thread: the
    # block builder's own process mirrors the database through it (builder_process.py).
    on_write: Optional[Callable[[list, list], None]] = None

    def __init__(self, path: str | Path, create_if_missing: bool = True,
                 max_open_files: int = MAX_OPEN_FILES) -> None:
        self._attach(Path(path), plyvel.DB(str(path), create_if_missing=create_if_missing,
                                           max_open_files=max_open_files))
        _open_dbs[id(self)] = self

    def _attach(self, path: Path, handle) -> None:
        """Store in `handle` (plyvel's API: get, put, delete, write_batch, close)."""
        self.path = path
        self._db = handle
        # The open block's pending writes and deletes; None when no block_batch is open.
        # Only the thread that opened it sees it: readers on other threads (RPC) keep
        # reading the last committed block, never a half-built or refused one.
        self._block: DBDiffTracker | None = None
        self._block_thread: int | None = None

    def __repr__(self) -> str:
        return f"LevelDB({str(self.path)!r})"

    # -- DatabaseAPI -------------------------------------------------------------------

    def _in_block(self) -> bool:
        return self._block is not None and self._block_thread == threading.get_ident()

    def __getitem__(self, key: bytes) -> bytes:
        key = _as_bytes(key, "key")
        if self._in_block():
            try:
                return self._block[key]
            except DiffMissingError as missing:
                if missing.is_deleted:
                    raise KeyError(key) from None
        value = self._db.get(key)
        if value is None:  # b"" is a stored value: compare with None, not falsiness
            raise KeyError(key)
        return value

    def committed(self, key: bytes) -> Optional[bytes]:
        """The value on disk (never the open block's), or None: the builder process's reads."""
        return self._db.get(key)

    def __setitem__(self, key: bytes, value: bytes) -> None:
        key, value = _as_bytes(key, "key"), _as_bytes(value, "value")
        if self._in_block():
            self._block[key] = value
        else:
            self._db.put(key, value, sync=True)
            self._written([(key, value)], [])

    def __delitem__(self, key: bytes) -> None:
        """Delete `key`; KeyError if it is missing, like py-evm's MemoryDB and AtomicDB."""
        if not self._exists(key):
            raise KeyError(key)
        if self._in_block():
            del self._block[key]
        else:
            self._db.delete(key, sync=True)
            self._written([], [key])

    def _exists(self, key: bytes) -> bool:
        try:
            self[key]
        except KeyError:
            return False
        return True

    # -- batches -----------------------------------------------------------------------

    @contextmanager
    def atomic_batch(self) -> Iterator[AtomicWriteBatchAPI]:
        """py-evm's atomic batch: committed whole on normal exit, dropped on exception."""
        with LevelDBWriteBatch._commit_unless_raises(self) as batch:
            yield batch

    @contextmanager
    def block_batch(self) -> Iterator["LevelDB"]:
        """Hold every write until the block is done: one synced write batch, or nothing.

        py-evm persists a block through several atomic batches (state trie, then headers,
        block body, receipts, canonical head) plus direct writes; a crash between them would
        leave a head without its state, or state without a head. Inside this context all of
        them go to one overlay (reads see it); normal exit writes the overlay as a single
        LevelDB write batch, an exception discards it and the database is exactly as before.

        Other threads do not see the overlay: they read the last committed block.

        The overlay only covers the database: after a discarded block, in-memory objects
        built during it (a MiningChain's pending header) may point at state that was never
        written, so rebuild them from the database.
        """
        if self._block is not None:
            raise AssertionError(f"{self!r}: block_batch() does not nest")
        self._block, self._block_thread = DBDiffTracker(), threading.get_ident()
        try:
            yield self
        except BaseException:
            self.logger.debug("block dropped: %d pending keys discarded", len(self._block))
            raise
        else:
            block, self._block = self._block, None
            self._write_diff(block.diff())
        finally:
            self._block, self._block_thread = None, None

    def _write_diff(self, diff: DBDiff) -> None:
        """Apply a committed atomic batch: into the open block, else as one synced write."""
        if self._in_block():
            diff.apply_to(self._block, apply_deletes=True)
            return
        deletes = [_as_bytes(key, "key") for key in diff.deleted_keys()]
        puts = [(_as_bytes(key, "key"), _as_bytes(value, "value")) for key, value in diff.pending_items()]
        self.write_items(puts, deletes)
        self._written(puts, deletes)

    def write_items(self, puts: list, deletes: list) -> None:
        """Write (key, value) pairs and deletions as one synced LevelDB batch (exact bytes);
        `on_write` is not told (the caller knows what it wrote)."""
        # transaction=True: an error while filling the batch writes none of it.
        with self._db.write_batch(transaction=True, sync=True) as write_batch:
            for key in deletes:
                write_batch.delete(key)
            for key, value in puts:
                write_batch.put(key, value)

    def _written(self, puts: list, deletes: list) -> None:
        if self.on_write is not None:
            self.on_write(puts, deletes)

    # -- lifetime ----------------------------------------------------------------------

    def close(self) -> None:
        """Release the LevelDB lock and the plyvel handle (idempotent).

        Refused inside a block: it would lose it. After close, every access raises
        RuntimeError, as plyvel does on a closed database.
        """
        if self._block is not None:
            raise AssertionError(f"{self!r}: close() inside block_batch() would drop the block")
        self._release()

    def _release(self) -> None:
        """Close the plyvel handle and drop our reference to it, block or not."""
        handle, self._db = self._db, _RELEASED
        _open_dbs.pop(id(self), None)
        handle.close()

    @property
    def closed(self) -> bool:
        return self._db.closed

    def __enter__(self) -> "LevelDB":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _DictBackend:
    """The part of plyvel's API that LevelDB uses, over a dict (no disk, no lock)."""

    closed = False

    def __init__(self) -> None:
        self._data: dict = {}

    def get(self, key: bytes):
        return self._data.get(key)

    def put(self, key: bytes, value: bytes, sync: bool = False) -> None:
        self._data[key] = value

    def delete(self, key: bytes, sync: bool = False) -> None:
        self._data.pop(key, None)

    @contextmanager
    def write_batch(self, transaction: bool = False, sync: bool = False):
        batch: dict = {}
        deleted = object()

        class _Batch:
            def put(self, key, value):
                batch[key] = value

            def delete(self, key):
                batch[key] = deleted

        yield _Batch()
        for key, value in batch.items():
            if value is deleted:
                self._data.pop(key, None)
            else:
                self._data[key] = value

    def close(self) -> None:
        self.closed = True


class MemoryDB(LevelDB):
    """An in-memory database with LevelDB's block batches (thread-private overlay, one
    write per block), for `fee-node run --memory`, the demo and tests."""

    def __init__(self) -> None:
        self._attach(Path(":memory:"), _DictBackend())

    def __repr__(self) -> str:
        return "MemoryDB()"
