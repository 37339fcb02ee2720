"""The transaction pool's journal (node/journal.py): what it promises, each pinned.

A torn last record is cut off at restart and every complete record before it is kept; a
journaled transaction that became invalid meanwhile is dropped at restart with its reason
in the log; the journal is rewritten (new file, fsync, rename, directory fsync) once most
of its records left the pool, and then holds exactly the pool; the file is fsynced before
a hash is returned, and concurrent sends share fsyncs (group commit).

Nodes here are real in-process nodes on LevelDB with the journal beside it, as
`fee-node run --datadir` builds them; os.fsync and os.replace are only spied on (every
call goes through to the real one). The file is read back by the parser below, written
from the documented format (length, CRC-32, raw bytes), not by the journal's own loader.
"""
import os
import struct
import threading
import zlib

import pytest

from fee_plugin.node import ManualClock, Node
from fee_plugin.node.journal import TxJournal
from fee_plugin.node.leveldb import LevelDB

from .support.chain import GENESIS_TIME, GWEI, OPERATOR_KEY, USER_KEYS, VAULT, address, calldata, make_genesis, sign
from .support.nodes import deposit, transfer

ALICE, BOB, CAROL, DAVE, ERIN = USER_KEYS[:5]
JOURNAL = "txpool.journal"


def open_node(datadir, clock, genesis, journal=True):
    """A node as `fee-node run --datadir` opens it: LevelDB in chain/, the journal beside it."""
    return Node(genesis, db=LevelDB(datadir / "chain"), clock=clock,
                journal_path=datadir / JOURNAL if journal else None)


@pytest.fixture
def genesis():
    return make_genesis(consumption="upfront")


@pytest.fixture
def clock():
    return ManualClock(GENESIS_TIME + 10)


def file_records(path):
    """The journal's records, parsed independently of journal.py; a bad one fails the test."""
    data, offset, records = path.read_bytes(), 0, []
    while offset < len(data):
        length, crc = struct.unpack_from(">II", data, offset)
        body = data[offset + 8: offset + 8 + length]
        assert len(body) == length and zlib.crc32(body) == crc, f"bad record at byte {offset}"
        records.append(body)
        offset += 8 + length
    return records


def record_bytes(raw):
    return 8 + len(raw)


def pool_hashes(node):
    pending, queued = node.pool.content()
    return {e.hash for run in list(pending.values()) + list(queued.values()) for e in run}


def mined_hashes(node):
    chain = node.chain
    return [tx.hash for n in range(1, chain.get_canonical_head().block_number + 1)
            for tx in chain.get_canonical_block_by_number(n).transactions]


def fd_path(fd):
    return os.readlink(f"/proc/self/fd/{fd}")


# -- a torn tail --------------------------------------------------------------------------

def _cut_mid_body(path, last):
    path.write_bytes(path.read_bytes()[:-(len(last) // 2)])


def _cut_mid_header(path, last):
    path.write_bytes(path.read_bytes()[:-(len(last) + 5)])  # 3 of the 8 header bytes remain


def _flip_crc(path, last):
    data = bytearray(path.read_bytes())
    data[-(len(last) + 1)] ^= 0xFF  # the CRC's last byte
    path.write_bytes(bytes(data))


def _flip_body_byte(path, last):
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # the length is right, the CRC no longer matches
    path.write_bytes(bytes(data))


TORN = [_cut_mid_body, _cut_mid_header, _flip_crc, _flip_body_byte]


@pytest.mark.parametrize("tear", TORN, ids=lambda f: f.__name__.lstrip("_"))
def test_torn_last_record_is_cut_off_and_every_complete_record_kept(tmp_path, caplog, tear):
    path = tmp_path / JOURNAL
    raws = [bytes([i]) * (40 + 13 * i) for i in range(5)]
    journal = TxJournal(path)
    journal.sync(max(journal.append(raw) for raw in raws))
    journal.close()
    intact = sum(record_bytes(raw) for raw in raws[:-1])
    tear(path, raws[-1])

    reopened = TxJournal(path)
    with caplog.at_level("WARNING", logger="fee_plugin.node.journal"):
        assert reopened.load() == raws[:-1]
    assert f"torn record at byte {intact} cut off" in caplog.text
    assert path.stat().st_size == intact  # the torn bytes are gone from the file
    # A record written after the cut follows the last complete one directly.
    reopened.sync(reopened.append(b"after the restart"))
    reopened.close()
    assert file_records(path) == raws[:-1] + [b"after the restart"]


def test_an_intact_journal_loads_whole_and_is_left_as_it_is(tmp_path, caplog):
    path = tmp_path / JOURNAL
    raws = [b"a" * 10, b"b" * 200, b""]
    journal = TxJournal(path)
    journal.sync(max(journal.append(raw) for raw in raws))
    journal.close()
    before = path.read_bytes()
    with caplog.at_level("WARNING", logger="fee_plugin.node.journal"):
        assert TxJournal(path).load() == raws
    assert "torn" not in caplog.text and path.read_bytes() == before


@pytest.mark.parametrize("tear", [_cut_mid_body, _flip_crc], ids=["truncated", "bad_crc"])
def test_node_restart_keeps_every_transaction_before_a_torn_one(tmp_path, genesis, clock, caplog, tear):
    node = open_node(tmp_path, clock, genesis)
    deposit(node, clock, ALICE)
    sent = [transfer(node, ALICE, nonce=n) for n in range(1, 6)]
    for tx in sent:
        node.send_transaction(tx)
    node.close()  # what SIGKILL leaves is the same: every send was fsynced before it returned
    tear(tmp_path / JOURNAL, sent[-1].encode())

    with caplog.at_level("INFO", logger="fee_plugin.node"):
        node = open_node(tmp_path, clock, genesis)
    try:
        assert "torn record" in caplog.text
        pending, queued = node.pool.content()
        assert [e.hash for e in pending[address(ALICE)]] == [tx.hash for tx in sent[:-1]] and not queued
        assert set(file_records(tmp_path / JOURNAL)) == {tx.encode() for tx in sent[:-1]}
        clock.advance(1)
        assert [tx.hash for tx in node.produce().transactions] == [tx.hash for tx in sent[:-1]]
    finally:
        node.close()


# -- transactions that became invalid while the node was down -----------------------------

def test_journaled_transactions_that_became_invalid_are_dropped_at_restart_with_their_reason(
        tmp_path, genesis, clock, caplog):
    node = open_node(tmp_path, clock, genesis)
    for key in (ALICE, BOB, CAROL, DAVE, ERIN):
        deposit(node, clock, key)
    mined = transfer(node, ALICE, nonce=1)
    node.send_transaction(mined)
    clock.advance(1)
    assert node.produce().transactions == (mined,)  # mined; its record stays in the journal
    overtaken = transfer(node, BOB, nonce=1)  # another transaction takes its nonce meanwhile
    frozen = transfer(node, CAROL, nonce=1)  # its sender is frozen meanwhile
    replaced = transfer(node, DAVE, nonce=1, max_fee=2 * GWEI, tip=GWEI // 2)
    replacement = transfer(node, DAVE, nonce=1, value=2, max_fee=3 * GWEI, tip=GWEI)
    kept = transfer(node, ERIN, nonce=1)
    for tx in (overtaken, frozen, replaced, replacement, kept):
        node.send_transaction(tx)
    journaled = set(file_records(tmp_path / JOURNAL))
    assert {tx.encode() for tx in (mined, overtaken, frozen, replaced, replacement, kept)} <= journaled
    node.close()

    # Meanwhile the chain moves on without this journal (a block from elsewhere).
    other = open_node(tmp_path, clock, genesis, journal=False)
    rival = transfer(other, BOB, nonce=1, value=7)
    freeze = sign(other.chain, OPERATOR_KEY, VAULT, data=calldata("freeze", address(CAROL)), gas=300_000)
    other.send_transaction(rival)
    other.send_transaction(freeze)
    clock.advance(1)
    assert set(other.produce().transactions) == {rival, freeze}
    other.close()

    with caplog.at_level("INFO", logger="fee_plugin.node"):
        node = open_node(tmp_path, clock, genesis)
    try:
        log = caplog.text
        dropped = {line.split("journaled transaction 0x")[1].split(" ")[0]: line
                   for line in log.splitlines() if "dropped at restart" in line}
        assert "nonce too low: next nonce 2, tx nonce 1" in dropped[mined.hash.hex()]
        assert "nonce too low: next nonce 2, tx nonce 1" in dropped[overtaken.hash.hex()]
        assert "frozen" in dropped[frozen.hash.hex()]
        assert f"dropped transaction 0x{replaced.hash.hex()}: replaced by 0x{replacement.hash.hex()}" in log
        assert kept.hash.hex() not in dropped and replacement.hash.hex() not in dropped
        assert pool_hashes(node) == {replacement.hash, kept.hash}
        # The journal now holds exactly the pool; the next block mines what survived, once.
        assert set(file_records(tmp_path / JOURNAL)) == {replacement.encode(), kept.encode()}
        clock.advance(1)
        assert set(node.produce().transactions) == {replacement, kept}
        chain = mined_hashes(node)
        assert len(chain) == len(set(chain)) and frozen.hash not in chain and overtaken.hash not in chain
    finally:
        node.close()


# -- the rewrite -----------------------------------------------------------------------------

class FileOpSpy:
    """Records os.fsync / os.replace calls by path and passes each to the real function."""

    def __init__(self, monkeypatch):
        self.events = []
        self._fsync, self._replace = os.fsync, os.replace
        monkeypatch.setattr(os, "fsync", self.fsync)
        monkeypatch.setattr(os, "replace", self.replace)

    def fsync(self, fd):
        path = fd_path(fd)
        self.events.append(("fsync", path))
        self._fsync(fd)
        self.events.append(("fsynced", path))

    def replace(self, src, dst, *args, **kw):
        self.events.append(("replace", str(src), str(dst)))
        return self._replace(src, dst, *args, **kw)


def test_journal_is_rewritten_when_most_records_left_the_pool_and_recovers_the_pool(
        tmp_path, genesis, clock, monkeypatch):
    node = open_node(tmp_path, clock, genesis)
    users = USER_KEYS[:6]
    for key in users:
        deposit(node, clock, key)
    spy = FileOpSpy(monkeypatch)
    for key in users:
        for nonce in range(1, 51):
            node.send_transaction(transfer(node, key, nonce=nonce))
    waiting = [transfer(node, ALICE, nonce=n) for n in (52, 53, 54)]  # nonce 51 missing: queued
    for tx in waiting:
        node.send_transaction(tx)
    path = tmp_path / JOURNAL
    assert len(file_records(path)) == 6 + 300 + 3 and node.pool.stats() == (300, 3)
    assert not [e for e in spy.events if e[0] == "replace"]  # nothing to gain yet: no rewrite

    clock.advance(1)
    assert len(node.produce().transactions) == 300  # 306 of 309 records are gone from the pool
    replaces = [i for i, e in enumerate(spy.events) if e[0] == "replace"]
    assert len(replaces) == 1
    _, tmp, target = spy.events[replaces[0]]
    assert target == str(path) and tmp != target and os.path.dirname(tmp) == str(tmp_path)
    before, after = spy.events[:replaces[0]], spy.events[replaces[0] + 1:]
    assert before[-2:] == [("fsync", tmp), ("fsynced", tmp)]  # the new file is durable first
    assert after[:2] == [("fsync", str(tmp_path)), ("fsynced", str(tmp_path))]  # then the rename
    assert not os.path.exists(tmp)
    assert file_records(path) == [tx.encode() for tx in waiting]  # exactly the pool

    gap = transfer(node, ALICE, nonce=51)
    node.send_transaction(gap)  # appends to the new file
    assert file_records(path) == [tx.encode() for tx in waiting + [gap]]
    node.close()

    node = open_node(tmp_path, clock, genesis)
    try:
        assert pool_hashes(node) == {tx.hash for tx in waiting + [gap]}
        clock.advance(1)
        assert [tx.nonce for tx in node.produce().transactions] == [51, 52, 53, 54]
    finally:
        node.close()


# -- fsync before the hash, shared under load -----------------------------------------------

def test_the_journal_is_fsynced_with_the_record_before_the_hash_is_returned(
        tmp_path, genesis, clock, monkeypatch):
    node = open_node(tmp_path, clock, genesis)
    try:
        deposit(node, clock, ALICE)
        path = str(tmp_path / JOURNAL)
        events = []
        real_fsync = os.fsync

        def spy(fd):
            on_disk = open(fd_path(fd), "rb").read() if fd_path(fd) == path else b""
            events.append(("fsync", fd_path(fd), tx.encode() in on_disk))
            real_fsync(fd)
            events.append(("fsynced", fd_path(fd)))

        monkeypatch.setattr(os, "fsync", spy)
        tx = transfer(node, ALICE, nonce=1)
        events.append(("send",))
        returned = node.send_transaction(tx)
        events.append(("returned", returned))
        assert returned == tx.hash
        assert events == [("send",), ("fsync", path, True), ("fsynced", path), ("returned", tx.hash)]
    finally:
        node.close()


def test_concurrent_sends_share_fsyncs(tmp_path, genesis, clock, monkeypatch):
    """N threads send at once. The first fsync is held (by the spy, bounded) until every
    thread has written its record, so the others must wait for a sync instead of each
    doing its own: two fsyncs cover all N, and every transaction is journaled."""
    n = 8
    node = open_node(tmp_path, clock, genesis)
    try:
        deposit(node, clock, ALICE)
        txs = [transfer(node, ALICE, nonce=nonce) for nonce in range(1, n + 1)]
        path = str(tmp_path / JOURNAL)
        appended = threading.Condition()
        counts = {"appended": 0, "fsync": 0}
        real_append, real_fsync = TxJournal.append, os.fsync

        def counting_append(self, raw):
            seq = real_append(self, raw)
            with appended:
                counts["appended"] += 1
                appended.notify_all()
            return seq

        def spy(fd):
            if fd_path(fd) == path:
                with appended:
                    counts["fsync"] += 1
                    if counts["fsync"] == 1:  # hold the first fsync until all have written
                        appended.wait_for(lambda: counts["appended"] >= n, timeout=30)
            real_fsync(fd)

        monkeypatch.setattr(TxJournal, "append", counting_append)
        monkeypatch.setattr(os, "fsync", spy)
        start = threading.Barrier(n)
        results, errors = {}, []

        def send(tx):
            try:
                start.wait(timeout=30)
                results[tx.hash] = node.send_transaction(tx)
            except Exception as err:  # reported below
                errors.append(err)

        threads = [threading.Thread(target=send, args=(tx,)) for tx in txs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors and not any(t.is_alive() for t in threads)
        assert results == {tx.hash: tx.hash for tx in txs}
        assert counts["appended"] == n
        assert 1 <= counts["fsync"] <= 2 < n, counts
        assert {tx.encode() for tx in txs} <= set(file_records(tmp_path / JOURNAL))
        assert node.pool.stats() == (n, 0)
    finally:
        node.close()
