"""Fixtures for tests against real etcd members on loopback (see fee_plugin.node.cluster.devnet).

`etcd_devnet` is one 3-member cluster per test module, for tests that do not break it (each
takes its own chain prefix through `chain_keys`); `fresh_devnet` is a cluster of its own for a
test that kills, pauses or restarts members. Members are stopped by pid when the fixture ends.
Without `etcd` on PATH these tests are skipped, except under CI (CI=true), where they fail.
"""
from __future__ import annotations

import itertools
import os
import shutil
import signal
import time
from collections.abc import Callable

import pytest

from fee_plugin.node.cluster import ChainKeys, EtcdClient
from fee_plugin.node.cluster.devnet import Devnet, start_devnet

_chain_ids = itertools.count(1000)


def require_etcd() -> None:
    if shutil.which("etcd") is None:
        if os.environ.get("CI"):
            pytest.fail("etcd is not on PATH in CI (.ci/run installs etcd-server)")
        pytest.skip("etcd not on PATH (apt-get install etcd-server etcd-client)")


def wait_until(condition: Callable[[], object], timeout_seconds: float, what: str,
               poll_seconds: float = 0.01) -> object:
    """Poll `condition` until it returns something truthy; fail naming `what` after the timeout."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_seconds} s waiting for {what}")
        time.sleep(poll_seconds)


def leader_member(devnet: Devnet) -> int:
    """Index of the member that is etcd's Raft leader now."""
    client = EtcdClient(devnet.client_urls)
    for index, _ in enumerate(devnet.members):
        if devnet.is_running(devnet.members[index].name):
            status = client.status(index)
            if status["leader"] == status["header"]["member_id"]:
                return index
    raise AssertionError("no running member is etcd's leader")


@pytest.fixture(scope="module")
def etcd_devnet(tmp_path_factory):
    require_etcd()
    devnet = start_devnet(tmp_path_factory.mktemp("etcd"), 3)
    try:
        yield devnet
    finally:
        devnet.stop(signal.SIGKILL)


@pytest.fixture
def fresh_devnet(tmp_path):
    require_etcd()
    devnet = start_devnet(tmp_path / "etcd", 3)
    try:
        yield devnet
    finally:
        devnet.stop(signal.SIGKILL)


@pytest.fixture
def chain_keys() -> ChainKeys:
    """Keys of a chain no other test in the session uses."""
    chain_id = next(_chain_ids)
    return ChainKeys(chain_id, chain_id.to_bytes(32, "big"))
