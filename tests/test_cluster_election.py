"""Producer election on real etcd members: one producer, failover within 3 s, fencing."""
from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fee_plugin.node.cluster import (
    AppendStatus,
    BlockLog,
    Election,
    EtcdClient,
    NodeRegistry,
    Session,
)
from tests.support.blocks import make_block
from tests.support.etcd import wait_until

REPO = Path(__file__).resolve().parent.parent
FAILOVER_SECONDS_MAX = 3.0


def start_node(devnet, keys, node_id, candidate=True, on_change=None):
    session = Session(EtcdClient(devnet.client_urls)).start()
    election = Election(session, keys.election, node_id, f"http://{node_id}:8545",
                        candidate=candidate, on_change=on_change).start()
    return session, election


def stop_nodes(*nodes):
    for session, election in nodes:
        election.close()
        session.close()


class Candidate:
    """tests/support/candidate.py in a subprocess, its stdout lines in a queue."""

    def __init__(self, devnet, keys, node_id):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.candidate", ",".join(devnet.client_urls),
             str(keys.chain_id), keys.genesis_hash.hex(), node_id],
            cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(json.loads(line))

    def next_line(self, timeout_seconds: float) -> dict:
        return self.lines.get(timeout=timeout_seconds)

    def ask(self, command: str, timeout_seconds: float = 10.0) -> dict:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.next_line(timeout_seconds)

    def stop(self):
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def test_exactly_one_producer_and_every_node_agrees(etcd_devnet, chain_keys):
    nodes = [start_node(etcd_devnet, chain_keys, f"n{i}") for i in range(3)]
    try:
        elections = [election for _, election in nodes]
        wait_until(lambda: sum(e.is_leader for e in elections) == 1, 5, "one producer")
        producer = next(e for e in elections if e.is_leader)
        wait_until(lambda: all(e.leader_id == producer.node_id for e in elections), 5,
                   "every node seeing the producer")
        assert {e.leader_url for e in elections} == {f"http://{producer.node_id}:8545"}
        assert producer.fence.key == chain_keys.election
        assert producer.fence.revision == producer.leader.revision
        assert sum(e.fence is not None for e in elections) == 1
    finally:
        stop_nodes(*nodes)


def test_resign_hands_the_key_to_another_candidate(etcd_devnet, chain_keys):
    first = start_node(etcd_devnet, chain_keys, "first")
    assert first[1].wait_until_leader(5)
    second = start_node(etcd_devnet, chain_keys, "second")
    try:
        assert second[1].wait_for_leader(5).node_id == "first"
        assert first[1].resign()
        assert first[1].fence is None
        assert second[1].wait_until_leader(1.0)
        first[1].campaign()
        assert first[1].wait_for(lambda e: e.leader_id == "second", 2)
        assert not first[1].is_leader
    finally:
        stop_nodes(first, second)


def test_observer_sees_each_producer_change(etcd_devnet, chain_keys):
    seen = []
    observer = start_node(etcd_devnet, chain_keys, "observer", candidate=False,
                          on_change=seen.append)
    first = start_node(etcd_devnet, chain_keys, "first")
    try:
        assert first[1].wait_until_leader(5)
        assert observer[1].wait_for(lambda e: e.leader_id == "first", 5)
        second = start_node(etcd_devnet, chain_keys, "second")
        try:
            assert second[1].wait_for(lambda e: e.leader_id == "first", 5)
            first[1].resign()
            assert observer[1].wait_for(lambda e: e.leader_id == "second", 2)
        finally:
            stop_nodes(second)
        assert [leader.node_id for leader in seen if leader] == ["first", "second"]
        assert not observer[1].is_leader
    finally:
        stop_nodes(observer, first)


def test_session_alive_ends_at_last_keepalive_plus_ttl_minus_margin(etcd_devnet):
    now = [100.0]
    session = Session(EtcdClient(etcd_devnet.client_urls), ttl_seconds=2, margin_seconds=0.3,
                      keepalive_interval_seconds=1.5, clock=lambda: now[0]).start()
    try:
        assert session.valid_until() == pytest.approx(101.7)
        now[0] = 101.69
        assert session.alive()
        now[0] = 101.7
        assert not session.alive()
    finally:
        session.close()


def test_producer_cut_off_from_etcd_deposes_itself_before_its_lease_can_expire(fresh_devnet,
                                                                              chain_keys):
    session, election = start_node(fresh_devnet, chain_keys, "cut-off")
    try:
        assert election.wait_until_leader(5)
        for index in range(3):
            fresh_devnet.pause_member(index)
        stopped = time.monotonic()
        try:
            assert election.wait_for(lambda e: not e.is_leader, session.ttl_seconds)
            deposed = time.monotonic()
            # etcd cannot expire the lease before (last keepalive sent) + TTL, which is
            # valid_until + margin: the producer gave up before that.
            assert deposed < session.valid_until() + session.margin_seconds
            assert deposed - stopped <= session.ttl_seconds - session.margin_seconds + 0.1
        finally:
            for index in range(3):
                fresh_devnet.resume_member(index)
        assert election.wait_until_leader(10), "the only candidate is producer again"
    finally:
        stop_nodes((session, election))


@pytest.mark.slow
def test_stopped_producer_process_is_replaced_within_3_s_and_then_fenced(fresh_devnet,
                                                                        chain_keys):
    candidate = Candidate(fresh_devnet, chain_keys, "stopped")
    successor = None
    try:
        assert candidate.next_line(30)["event"] == "leader"
        successor = start_node(fresh_devnet, chain_keys, "successor")
        assert successor[1].wait_for(lambda e: e.leader_id == "stopped", 5)
        os.kill(candidate.process.pid, signal.SIGSTOP)
        stopped = time.monotonic()
        assert successor[1].wait_until_leader(FAILOVER_SECONDS_MAX)
        failover_seconds = time.monotonic() - stopped
        assert failover_seconds < FAILOVER_SECONDS_MAX
        os.kill(candidate.process.pid, signal.SIGCONT)
        status = candidate.ask("status")
        assert status["is_leader"] is False
        # Head is still the genesis, so "head == number - 1" alone would let it write block 1.
        log = BlockLog(EtcdClient(fresh_devnet.client_urls), chain_keys)
        assert log.head().number == 0
        assert candidate.ask(f"append 1 {chain_keys.genesis_hash.hex()}") == {
            "status": AppendStatus.FENCED.value}
        assert log.head().number == 0
        data, block_hash = make_block(1, chain_keys.genesis_hash)
        result = log.append(1, chain_keys.genesis_hash, block_hash, data, successor[1].fence)
        assert result.committed
    finally:
        candidate.stop()
        if successor is not None:
            stop_nodes(successor)


def test_registry_lists_live_nodes_and_forgets_a_closed_one(etcd_devnet, chain_keys):
    sessions = [Session(EtcdClient(etcd_devnet.client_urls)).start() for _ in range(2)]
    registries = [NodeRegistry(s, chain_keys, f"org{i}", f"http://10.0.0.{i}:8545")
                  for i, s in enumerate(sessions)]
    try:
        for registry in registries:
            registry.publish()
        assert registries[0].nodes() == {"org0": "http://10.0.0.0:8545",
                                         "org1": "http://10.0.0.1:8545"}
        assert registries[0].peers() == {"org1": "http://10.0.0.1:8545"}
        sessions[1].close()  # revokes the lease: the entry goes with it
        assert registries[0].nodes() == {"org0": "http://10.0.0.0:8545"}
    finally:
        sessions[0].close()


def test_lost_lease_is_replaced_and_the_entry_republished(etcd_devnet, chain_keys):
    session = Session(EtcdClient(etcd_devnet.client_urls)).start()
    registry = NodeRegistry(session, chain_keys, "org0", "http://10.0.0.0:8545")
    election = Election(session, chain_keys.election, "org0", "http://10.0.0.0:8545").start()
    try:
        registry.publish()
        assert election.wait_until_leader(5)
        old_lease, old_fence = session.lease_id, election.fence
        session.client.lease_revoke(old_lease)  # as if etcd had expired it
        assert registry.nodes() == {}
        wait_until(lambda: session.lease_id != old_lease, 5, "a new lease")
        wait_until(registry.nodes, 5, "the entry back")
        assert election.wait_for(lambda e: e.fence is not None and e.fence != old_fence, 5)
        assert election.fence.revision > old_fence.revision
    finally:
        election.close()
        session.close()
