"""The loopback devnet: members healthy, stopped by pid, restarted on their data."""
from __future__ import annotations

import os

import pytest

from fee_plugin.node.cluster import EtcdClient
from fee_plugin.node.cluster.devnet import Devnet, start_devnet
from tests.support.etcd import require_etcd


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_devnet_stops_by_pid_and_restarts_on_its_data(tmp_path):
    require_etcd()
    devnet = start_devnet(tmp_path, 3)
    try:
        pids = list(devnet.pids.values())
        assert all(pids) and len(set(pids)) == 3
        EtcdClient(devnet.client_urls).put(b"/kept", b"yes")
        devnet.stop()
        assert devnet.pids == {"m0": None, "m1": None, "m2": None}
        assert not any(process_exists(pid) for pid in pids)
        again = start_devnet(tmp_path, 3)  # same directory: same members, same data
        assert again.client_urls == devnet.client_urls
        assert EtcdClient(again.client_urls).get(b"/kept").value == b"yes"
        devnet = again
    finally:
        devnet.stop()


def test_layout_is_recorded_for_a_restart(etcd_devnet):
    reloaded = Devnet.load_layout(etcd_devnet.directory)
    assert reloaded.members == etcd_devnet.members
    assert reloaded.cluster_token == etcd_devnet.cluster_token
