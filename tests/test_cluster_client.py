"""The etcd JSON-gateway client on real members: failover, deadlines, watch breaks reported."""
from __future__ import annotations

import signal
import threading
import time

import pytest

from fee_plugin.node.cluster import (
    EtcdClient,
    EtcdCompacted,
    EtcdRequestError,
    EtcdUnavailable,
)
from fee_plugin.node.cluster.client import parse_endpoints
from fee_plugin.node.cluster.devnet import free_ports
from tests.support.etcd import leader_member, wait_until


def ordered(devnet, first):
    """The devnet's client URLs with member `first` in front (the client tries it first)."""
    urls = devnet.client_urls
    return [urls[first]] + [url for i, url in enumerate(urls) if i != first]


def test_endpoints_parse_and_refuse_nonsense():
    assert [e.url for e in parse_endpoints("http://127.0.0.1:1, http://[::1]:2")] == [
        "http://127.0.0.1:1", "http://[::1]:2"]
    with pytest.raises(ValueError, match="no etcd endpoint"):
        parse_endpoints(" , ")
    with pytest.raises(ValueError, match="not http"):
        parse_endpoints("127.0.0.1:2379")
    with pytest.raises(ValueError, match="duplicate"):
        parse_endpoints("http://a:1,http://a:1")


def test_no_member_listening_raises_unavailable_within_the_deadline():
    client = EtcdClient([f"http://127.0.0.1:{port}" for port in free_ports(2)],
                        timeout_seconds=0.5, attempt_timeout_seconds=0.2)
    started = time.monotonic()
    with pytest.raises(EtcdUnavailable, match="no member answered within 0.5 s"):
        client.put(b"/k", b"v")
    assert 0.5 <= time.monotonic() - started < 1.0


def test_request_too_large_is_refused_at_once_not_retried(etcd_devnet):
    client = EtcdClient(etcd_devnet.client_urls)
    started = time.monotonic()
    with pytest.raises(EtcdRequestError, match="request is too large") as refused:
        client.put(b"/too-large", b"x" * 1_600_000)
    assert refused.value.code == 3
    assert time.monotonic() - started < 0.5


def test_txn_compares_and_reports_the_failure_branch(etcd_devnet):
    from fee_plugin.node.cluster.client import compare_value, put_op, range_op
    client = EtcdClient(etcd_devnet.client_urls)
    client.put(b"/txn/a", b"1")
    result = client.txn([compare_value(b"/txn/a", b"2")], [put_op(b"/txn/a", b"3")],
                        [range_op(b"/txn/a")])
    assert not result.succeeded
    assert result.range(0).kvs[0].value == b"1"
    assert client.txn([compare_value(b"/txn/a", b"1")], [put_op(b"/txn/a", b"3")]).succeeded
    assert client.get(b"/txn/a").value == b"3"


@pytest.mark.slow
def test_calls_fail_over_from_a_killed_member_and_from_a_paused_one(fresh_devnet):
    follower = next(i for i in range(3) if i != leader_member(fresh_devnet))
    client = EtcdClient(ordered(fresh_devnet, follower), timeout_seconds=3.0,
                        attempt_timeout_seconds=0.5)
    client.put(b"/failover", b"0")
    fresh_devnet.pause_member(follower)  # accepts connections, answers nothing
    try:
        started = time.monotonic()
        client.put(b"/failover", b"1")
        assert 0.5 <= time.monotonic() - started < 1.5
    finally:
        fresh_devnet.resume_member(follower)
    leader = leader_member(fresh_devnet)
    client = EtcdClient(ordered(fresh_devnet, leader), timeout_seconds=5.0)
    fresh_devnet.stop_member(leader, signal.SIGKILL)
    started = time.monotonic()
    client.put(b"/failover", b"2")  # through a survivor, once it has elected a new leader
    assert time.monotonic() - started < 5.0
    assert client.get(b"/failover").value == b"2"


@pytest.mark.slow
def test_watch_reports_the_death_of_its_member_instead_of_hanging(fresh_devnet):
    client = EtcdClient(ordered(fresh_devnet, 1))
    revision = client.put(b"/w/a", b"1")
    stream = client.watch(b"/w/", b"/w0", revision, idle_timeout_seconds=30)
    outcome = []

    def read():
        try:
            for batch in stream:
                outcome.extend(event.kv.key for event in batch.events)
        except EtcdUnavailable as exc:
            outcome.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    wait_until(lambda: outcome == [b"/w/a"], 5, "the first event")
    assert stream.endpoint == fresh_devnet.client_urls[1]
    fresh_devnet.stop_member(1, signal.SIGKILL)
    reader.join(5)
    assert not reader.is_alive()
    assert isinstance(outcome[-1], EtcdUnavailable)


def test_watch_before_compacted_history_raises_compacted(etcd_devnet):
    client = EtcdClient(etcd_devnet.client_urls)
    old = client.put(b"/compacted/a", b"1")
    client.compact(client.put(b"/compacted/a", b"2"))
    with pytest.raises(EtcdCompacted):
        for _ in client.watch(b"/compacted/a", None, old):
            pass


def test_watch_close_from_another_thread_ends_the_iteration_quietly(etcd_devnet):
    client = EtcdClient(etcd_devnet.client_urls)
    stream = client.watch(b"/quiet/", b"/quiet0", client.put(b"/other", b"x"),
                          idle_timeout_seconds=30)
    done = threading.Event()

    def read():
        for _ in stream:
            pass
        done.set()

    threading.Thread(target=read, daemon=True).start()
    wait_until(lambda: stream.endpoint, 5, "the stream open")
    stream.close()
    assert done.wait(2)
