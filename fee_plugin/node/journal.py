"""The pool's journal on disk: a transaction whose hash was returned survives a crash.

Every accepted transaction is appended as one record (length, CRC-32, raw bytes) and the
file is fsynced before the RPC answers with the hash. fsync is a group commit: requests
that arrive while one fsync runs share the next one, so the cost per transaction falls as
the load rises. A record torn by a crash fails its length or CRC and ends the journal.
When most records belong to transactions that left the pool (mined, replaced, dropped) the
journal is rewritten from the pool's contents: a new file, fsynced, renamed over the old
one, and the directory fsynced.
"""
import logging
import os
import struct
import threading
import zlib
from pathlib import Path
from typing import List

log = logging.getLogger("fee_plugin.node.journal")

_HEADER = struct.Struct(">II")  # length, crc32
MAX_RECORD_BYTES = 1 << 20


class TxJournal:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()  # file writes and rewrites
        self._synced = threading.Condition(threading.Lock())
        self._appended = 0  # sequence number of the last record written
        self._durable = 0  # every record up to this one is fsynced
        self._syncing = False
        self.records = 0  # records in the file now
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "ab")

    def load(self) -> List[bytes]:
        """Every intact record, in order; a torn tail is cut off the file."""
        raws: List[bytes] = []
        with self._lock, open(self.path, "rb") as f:
            data = f.read()
            offset = 0
            while offset + _HEADER.size <= len(data):
                length, crc = _HEADER.unpack_from(data, offset)
                body = data[offset + _HEADER.size: offset + _HEADER.size + length]
                if length > MAX_RECORD_BYTES or len(body) != length or zlib.crc32(body) != crc:
                    break
                raws.append(body)
                offset += _HEADER.size + length
            if offset != len(data):
                log.warning("journal %s: torn record at byte %d cut off (%d bytes)",
                            self.path, offset, len(data) - offset)
                self._file.truncate(offset)
                os.fsync(self._file.fileno())
            self.records = len(raws)
        return raws

    def append(self, raw: bytes) -> int:
        """Write one record (not yet durable); returns its sequence number for `sync`."""
        record = _HEADER.pack(len(raw), zlib.crc32(raw)) + raw
        with self._lock:
            self._file.write(record)
            self._appended += 1
            self.records += 1
            return self._appended

    def sync(self, seq: int) -> None:
        """Return once record `seq` is on disk (one fsync serves every waiting writer)."""
        with self._synced:
            while self._durable < seq:
                if self._syncing:
                    self._synced.wait()
                    continue
                self._syncing = True
                self._synced.release()
                try:
                    with self._lock:
                        target = self._appended
                        self._file.flush()
                        fd = self._file.fileno()
                    os.fsync(fd)
                finally:
                    self._synced.acquire()
                    self._syncing = False
                self._durable = max(self._durable, target)
                self._synced.notify_all()

    def rewrite(self, raws: List[bytes]) -> None:
        """Replace the journal with exactly `raws` (the pool's contents), atomically."""
        tmp = self.path.with_suffix(".tmp")
        with self._lock:
            with open(tmp, "wb") as f:
                for raw in raws:
                    f.write(_HEADER.pack(len(raw), zlib.crc32(raw)) + raw)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
            self._file.close()
            self._file = open(self.path, "ab")
            self.records = len(raws)
            appended = self._appended
        with self._synced:  # everything appended so far is in the new, fsynced file
            self._durable = max(self._durable, appended)
            self._synced.notify_all()

    def close(self) -> None:
        with self._lock:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
