"""LevelDB adapter: py-evm's AtomicDB semantics on disk, crash-atomic batches and blocks."""
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from eth.db.atomic import AtomicDB
from eth_keys import keys
from eth_utils import ValidationError
from hypothesis import given
from hypothesis import strategies as st

import plyvel  # a hard dependency (setup.cfg): never skip

from fee_plugin import build_chain, fee_account, load_genesis
from fee_plugin.artifact import vault_function
from fee_plugin.node.leveldb import LevelDB

from .support.chain import ETHER, REPO, sign

GENESIS = load_genesis(REPO / "examples" / "genesis.json")
DEV_KEY = keys.PrivateKey(b"\x01" * 32)
DEV = DEV_KEY.public_key.to_canonical_address()


class Boom(Exception):
    """Raised by tests to abandon a batch or a block."""


def on_disk(path) -> dict:
    """Everything LevelDB holds at `path`, read with plyvel itself (the LevelDB is closed)."""
    raw = plyvel.DB(str(path))
    try:
        return dict(raw.iterator())
    finally:
        raw.close()


@pytest.fixture
def db(tmp_path) -> Iterator[LevelDB]:
    with LevelDB(tmp_path / "db") as opened:
        yield opened


@pytest.fixture(params=["AtomicDB", "LevelDB"])
def either_db(request, tmp_path):
    """py-evm's AtomicDB and ours: the batch tests must pass on both, unchanged."""
    if request.param == "AtomicDB":
        yield AtomicDB()
    else:
        with LevelDB(tmp_path / "db") as opened:
            yield opened


class Recorder:
    """Stands in for the plyvel handle and records what reaches it (plyvel's C type is sealed)."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.calls: list[tuple] = []

    def get(self, key: bytes) -> Any:
        return self.raw.get(key)

    def put(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("put", kwargs))
        self.raw.put(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("delete", kwargs))
        self.raw.delete(*args, **kwargs)

    def write_batch(self, **kwargs: Any) -> Any:
        self.calls.append(("write_batch", kwargs))
        return self.raw.write_batch(**kwargs)


# -- basic key/value behaviour ----------------------------------------------------------


def test_get_set_delete_exists(db):
    db[b"k"] = b"v"
    assert db[b"k"] == b"v" and b"k" in db and db.exists(b"k")
    db[b"k"] = b"w"
    assert db[b"k"] == b"w"
    del db[b"k"]
    assert b"k" not in db and not db.exists(b"k")


def test_missing_key_raises_keyerror_on_get_and_del(either_db):
    with pytest.raises(KeyError):
        either_db[b"missing"]
    with pytest.raises(KeyError):
        del either_db[b"missing"]
    either_db.delete(b"missing")  # BaseDB.delete: tolerant


def test_empty_value_is_stored_not_missing(db):
    db[b""] = b""
    assert db[b""] == b"" and b"" in db


def test_writes_persist_across_reopen(tmp_path):
    with LevelDB(tmp_path / "db") as first:
        first[b"a"] = b"1"
        first[b"b"] = b"2"
        del first[b"b"]
    with LevelDB(tmp_path / "db") as again:
        assert again[b"a"] == b"1" and b"b" not in again


def test_create_if_missing_false_refuses_a_new_directory(tmp_path):
    with pytest.raises(plyvel.Error):
        LevelDB(tmp_path / "absent", create_if_missing=False)


@pytest.mark.parametrize(
    "key, value", [("k", b"v"), (b"k", "v"), (b"k", 1), (bytearray(b"k"), b"v")]
)
def test_non_bytes_rejected_when_written(db, key, value):
    with pytest.raises(TypeError):
        db[key] = value
    with pytest.raises(TypeError), db.atomic_batch() as batch:
        batch[key] = value


def test_bytes_subclass_is_stored_as_bytes(db):
    class Hash(bytes):
        pass

    db[Hash(b"k")] = Hash(b"v")
    with db.atomic_batch() as batch:
        batch[Hash(b"k2")] = Hash(b"v2")
    assert type(db[b"k"]) is bytes and db[b"k2"] == b"v2"


# -- atomic_batch: py-evm's AtomicDBWriteBatch semantics ---------------------------------


def test_batch_reads_see_pending_writes_and_deletes(either_db):
    either_db[b"old"] = b"1"
    with either_db.atomic_batch() as batch:
        batch[b"new"] = b"2"
        del batch[b"old"]
        assert batch[b"new"] == b"2" and b"new" in batch
        assert b"old" not in batch
        with pytest.raises(KeyError):
            batch[b"old"]
        assert b"new" not in either_db and either_db[b"old"] == b"1"  # not committed yet
    assert either_db[b"new"] == b"2" and b"old" not in either_db


def test_batch_delete_raises_only_when_missing_from_batch_and_db(either_db):
    either_db[b"in_db"] = b"1"
    with either_db.atomic_batch() as batch:
        batch[b"pending"] = b"2"
        del batch[b"pending"]  # exists only in the batch: allowed
        del batch[b"in_db"]  # exists only in the db: allowed
        for gone in (b"pending", b"in_db", b"never"):
            with pytest.raises(KeyError):
                del batch[gone]
        batch.delete(b"never")  # tolerant form
    assert b"pending" not in either_db and b"in_db" not in either_db


def test_batch_reads_through_to_direct_writes_made_while_open(either_db):
    with either_db.atomic_batch() as batch:
        either_db[b"direct"] = b"1"
        assert batch[b"direct"] == b"1"


def test_batch_dropped_on_exception(either_db):
    either_db[b"keep"] = b"1"
    with pytest.raises(Boom), either_db.atomic_batch() as batch:
        batch[b"new"] = b"2"
        del batch[b"keep"]
        raise Boom
    assert b"new" not in either_db and either_db[b"keep"] == b"1"


def test_batch_unusable_out_of_context(either_db):
    with either_db.atomic_batch() as batch:
        pass
    with pytest.raises(ValidationError):
        batch[b"k"]
    with pytest.raises(ValidationError):
        batch[b"k"] = b"v"
    with pytest.raises(ValidationError):
        del batch[b"k"]
    with pytest.raises(ValidationError):
        batch.exists(b"k")


def test_batch_commits_as_one_synced_write_batch(db, monkeypatch):
    db[b"old"] = b"1"
    monkeypatch.setattr(db, "_db", recorder := Recorder(db._db))
    with db.atomic_batch() as batch:
        for i in range(20):
            batch[b"k%d" % i] = b"v"
        del batch[b"old"]
        assert recorder.calls == []
    assert recorder.calls == [("write_batch", {"transaction": True, "sync": True})]


def test_batch_dropped_on_exception_writes_nothing(db, monkeypatch):
    monkeypatch.setattr(db, "_db", recorder := Recorder(db._db))
    with pytest.raises(Boom), db.atomic_batch() as batch:
        batch[b"k"] = b"v"
        raise Boom
    assert recorder.calls == []


# -- differential: random programs on LevelDB and on py-evm's AtomicDB --------------------

KEYS = st.sampled_from([b"", b"a", b"b", b"\x00", b"ab"])
OPS = st.one_of(
    st.tuples(st.just("set"), KEYS, st.binary(max_size=3)),
    st.tuples(st.sampled_from(["get", "exists", "del", "delete"]), KEYS),
)
# A batch interleaves operations on the batch ("in") with direct ones on the db ("out").
BATCH_ENTRY = st.tuples(st.sampled_from(["in", "in", "out"]), OPS)
BATCH = st.tuples(st.just("batch"), st.lists(BATCH_ENTRY, max_size=8), st.booleans())
FLAT_STEP = st.one_of(OPS.map(lambda op: ("op", op)), BATCH)
STEP = st.one_of(
    FLAT_STEP,
    st.tuples(st.just("block"), st.lists(FLAT_STEP, max_size=6), st.booleans()),
    st.just(("reopen",)),
)
PROGRAMS = st.lists(STEP, max_size=12)


class LevelTarget:
    def __init__(self, path) -> None:
        self.path = path
        self.db = LevelDB(path)

    def block(self):
        return self.db.block_batch()

    def reopen(self) -> None:
        self.db.close()
        self.db = LevelDB(self.path)


class ModelTarget:
    """AtomicDB, with a block modelled as snapshot-and-restore of its store."""

    def __init__(self) -> None:
        self.db = AtomicDB()

    @contextmanager
    def block(self):
        store = self.db.wrapped_db.kv_store
        snapshot = dict(store)
        try:
            yield
        except BaseException:
            store.clear()
            store.update(snapshot)
            raise

    def reopen(self) -> None:
        pass


def apply_op(db, op) -> Any:
    """The observable outcome of one operation: a value, a bool, None, or "KeyError"."""
    name, key = op[0], op[1]
    try:
        if name == "set":
            db[key] = op[2]
        elif name == "get":
            return db[key]
        elif name == "exists":
            return (key in db, db.exists(key))
        elif name == "del":
            del db[key]
        else:
            db.delete(key)
    except KeyError:
        return "KeyError"
    return None


def run_step(target, step, trace: list[Any]) -> None:
    kind = step[0]
    if kind == "op":
        trace.append(apply_op(target.db, step[1]))
    elif kind == "batch":
        _, entries, fail = step
        try:
            with target.db.atomic_batch() as batch:
                for where, op in entries:
                    trace.append(apply_op(batch if where == "in" else target.db, op))
                if fail:
                    raise Boom
        except Boom:
            trace.append("batch dropped")
    elif kind == "block":
        _, inner, fail = step
        try:
            with target.block():
                for inner_step in inner:
                    run_step(target, inner_step, trace)
                if fail:
                    raise Boom
        except Boom:
            trace.append("block dropped")
    else:
        target.reopen()


def run_program(target, program) -> list[Any]:
    trace: list[Any] = []
    for step in program:
        run_step(target, step, trace)
    return trace


@given(program=PROGRAMS)
def test_leveldb_behaves_like_atomicdb(tmp_path_factory, program):
    level, model = LevelTarget(tmp_path_factory.mktemp("diff") / "db"), ModelTarget()
    try:
        assert run_program(level, program) == run_program(model, program)
    finally:
        level.db.close()
    assert on_disk(level.path) == model.db.wrapped_db.kv_store


# -- block_batch -----------------------------------------------------------------------


def test_block_reads_see_pending_writes_and_deletes(db):
    db[b"old"] = b"1"
    with db.block_batch():
        db[b"new"] = b"2"
        del db[b"old"]
        assert db[b"new"] == b"2" and b"old" not in db
        with pytest.raises(KeyError):
            del db[b"old"]
        with db.atomic_batch() as batch:
            assert batch[b"new"] == b"2" and b"old" not in batch
            batch[b"batched"] = b"3"
        assert db[b"batched"] == b"3"
    assert db[b"new"] == b"2" and db[b"batched"] == b"3" and b"old" not in db


def test_block_writes_nothing_until_exit_then_one_synced_batch(db, monkeypatch):
    db[b"old"] = b"1"
    monkeypatch.setattr(db, "_db", recorder := Recorder(db._db))
    with db.block_batch():
        db[b"direct"] = b"1"
        del db[b"old"]
        for i in range(3):
            with db.atomic_batch() as batch:
                batch[b"batched%d" % i] = b"2"
        assert recorder.calls == []
    assert recorder.calls == [("write_batch", {"transaction": True, "sync": True})]


def test_block_dropped_on_exception_leaves_disk_unchanged(tmp_path):
    path = tmp_path / "db"
    with LevelDB(path) as db:
        db[b"keep"] = b"1"
        db[b"doomed"] = b"2"
        before = dict(db._db.iterator())
        with pytest.raises(Boom), db.block_batch():
            db[b"keep"] = b"changed"
            del db[b"doomed"]
            db[b"new"] = b"3"
            with db.atomic_batch() as batch:
                batch[b"batched"] = b"4"
            raise Boom
        assert db[b"keep"] == b"1" and db[b"doomed"] == b"2" and b"new" not in db
    assert on_disk(path) == before


def test_block_persists_after_reopen(tmp_path):
    path = tmp_path / "db"
    with LevelDB(path) as db:
        db[b"old"] = b"1"
        with db.block_batch():
            db[b"new"] = b"2"
            del db[b"old"]
            with db.atomic_batch() as batch:
                batch[b"batched"] = b"3"
    assert on_disk(path) == {b"new": b"2", b"batched": b"3"}


def test_failed_atomic_batch_inside_block_drops_only_its_writes(db):
    with db.block_batch():
        db[b"direct"] = b"1"
        with pytest.raises(Boom), db.atomic_batch() as batch:
            batch[b"batched"] = b"2"
            raise Boom
    assert db[b"direct"] == b"1" and b"batched" not in db


def test_block_batch_does_not_nest(db):
    with db.block_batch():
        db[b"outer"] = b"1"
        with pytest.raises(AssertionError), db.block_batch():
            pass
        assert db[b"outer"] == b"1"
    assert db[b"outer"] == b"1"


def test_close_inside_block_refused(db):
    with db.block_batch():
        with pytest.raises(AssertionError):
            db.close()
        assert not db.closed
    db.close()
    assert db.closed


# -- a real chain on LevelDB ---------------------------------------------------------------


def deposit(chain, value: int = ETHER):
    selector = vault_function("deposit").selector
    return sign(chain, DEV_KEY, GENESIS.fee.vault, value=value, data=selector, gas=300_000)


def mine_deposit(db: LevelDB, chain, timestamp: int):
    with db.block_batch():
        chain.set_header_timestamp(timestamp)
        chain.apply_transaction(deposit(chain))
        return chain.mine_block()


def test_chain_block_survives_reopen(tmp_path):
    path = tmp_path / "chain"
    with LevelDB(path) as db:
        chain = build_chain(GENESIS, db)
        block = mine_deposit(db, chain, GENESIS.timestamp + 12)
        account = fee_account(chain, DEV)
        assert account.deposited_wei == ETHER

    with LevelDB(path) as reopened_db:
        reopened = build_chain(GENESIS, reopened_db)
        head = reopened.get_canonical_head()
        assert head.hash == block.hash and head.state_root == block.header.state_root
        assert fee_account(reopened, DEV) == account


@pytest.mark.parametrize("mined", [False, True], ids=["after_apply", "after_mine"])
def test_chain_block_that_raises_leaves_previous_head(tmp_path, mined):
    path = tmp_path / "chain"
    with LevelDB(path) as db:
        chain = build_chain(GENESIS, db)
        first = mine_deposit(db, chain, GENESIS.timestamp + 12)
        account = fee_account(chain, DEV)
        with pytest.raises(Boom), db.block_batch():
            chain.set_header_timestamp(GENESIS.timestamp + 24)
            chain.apply_transaction(deposit(chain))
            if mined:
                chain.mine_block()
            raise Boom
        # The chain object's pending header is now stale; a node rebuilds it from the db.
        rebuilt = build_chain(GENESIS, db)
        assert rebuilt.get_canonical_head().hash == first.hash
        assert fee_account(rebuilt, DEV) == account

    with LevelDB(path) as reopened_db:
        reopened = build_chain(GENESIS, reopened_db)
        assert reopened.get_canonical_head().hash == first.hash
        assert fee_account(reopened, DEV) == account
        assert reopened.get_vm().state.get_nonce(DEV) == 1


def test_chain_rebuilt_after_dropped_block_mines_on(tmp_path):
    with LevelDB(tmp_path / "chain") as db:
        chain = build_chain(GENESIS, db)
        with pytest.raises(Boom), db.block_batch():
            chain.set_header_timestamp(GENESIS.timestamp + 12)
            chain.apply_transaction(deposit(chain))
            chain.mine_block()
            raise Boom
        rebuilt = build_chain(GENESIS, db)
        block = mine_deposit(db, rebuilt, GENESIS.timestamp + 12)
        assert block.number == 1 and fee_account(rebuilt, DEV).deposited_wei == ETHER


# -- crash atomicity: a process SIGKILLed inside and right after a block --------------------

CRASHING_WRITER = """
import os, signal, sys
from fee_plugin.node.leveldb import LevelDB

db = LevelDB(sys.argv[1])
db[b"before"] = b"1"
with db.block_batch():
    for i in range(5_000):
        db[b"key%d" % i] = b"value%d" % i
    with db.atomic_batch() as batch:
        batch[b"batched"] = b"2"
    del db[b"before"]
    if sys.argv[2] == "inside":
        os.kill(os.getpid(), signal.SIGKILL)
os.kill(os.getpid(), signal.SIGKILL)
"""


def crash_writer(path, when: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    command = [sys.executable, "-c", CRASHING_WRITER, str(path), when]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, check=False)
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()


def test_killed_inside_block_persists_none_of_it(tmp_path):
    crash_writer(tmp_path / "db", "inside")
    assert on_disk(tmp_path / "db") == {b"before": b"1"}


def test_killed_right_after_block_persists_all_of_it(tmp_path):
    crash_writer(tmp_path / "db", "after")
    stored = on_disk(tmp_path / "db")
    assert b"before" not in stored and stored[b"batched"] == b"2"
    assert all(stored[b"key%d" % i] == b"value%d" % i for i in range(5_000))
    assert len(stored) == 5_001


# -- interpreter shutdown: no plyvel handle may be freed during module teardown -------------

# trie's HexaryTrie keeps every trie (so its db, so this LevelDB) in a class-level lru_cache
# until module teardown; a plyvel.DB freed that late, even a closed one, printed
# "Error in sys.excepthook:" at exit.
PERSISTING_WRITER = """
import sys
from eth.db.account import AccountDB
from fee_plugin.node.leveldb import LevelDB

d = LevelDB(sys.argv[1])
a = AccountDB(d)
a.set_balance(b"\\x01" * 20, 5)
a.persist()
if sys.argv[2] == "closed":
    d.close()
print("done")
"""


@pytest.mark.parametrize("ending", ["left_open", "closed"])
def test_persisting_state_exits_cleanly(tmp_path, ending):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    command = [sys.executable, "-c", PERSISTING_WRITER, str(tmp_path / "db"), ending]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, check=False)
    assert result.stderr.decode() == ""
    assert result.returncode == 0 and result.stdout.decode() == "done\n"
    assert on_disk(tmp_path / "db")  # the state trie reached disk
