"""etcd over TLS with client certificates, as SECURITY.md tells a consortium to run it: a
node with its certificate commits and follows blocks; without one etcd turns it away."""
from __future__ import annotations

import copy
import shutil
import subprocess
import threading

import pytest

from fee_plugin.genesis import load_genesis
from fee_plugin.node.cluster import EtcdClient, EtcdError
from fee_plugin.node.cluster.clusternode import ClusterNode
from fee_plugin.node.cluster.config import ClusterConfig
from fee_plugin.node.cluster.devnet import etcd_binary, free_ports

from .support.chain import ETHER, USER_KEYS, VAULT, calldata, genesis_dict, sign
from .support.etcd import require_etcd, wait_until


def _openssl(*args: str, cwd) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _certificates(directory) -> None:
    """A CA, etcd's server certificate for 127.0.0.1, and a client certificate (CN org1)."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
             "-keyout", "ca.key", "-out", "ca.pem", cwd=directory)
    for name, extension in (("server", "subjectAltName=IP:127.0.0.1"),
                            ("client", "extendedKeyUsage=clientAuth")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout",
                 f"{name}.key", "-out", f"{name}.csr", cwd=directory)
        (directory / f"{name}.ext").write_text(extension + "\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem",
                 cwd=directory)


@pytest.fixture
def tls_etcd(tmp_path):
    require_etcd()
    if shutil.which("openssl") is None:
        pytest.skip("openssl not on PATH (needed to make test certificates)")
    _certificates(tmp_path)
    client_port, peer_port = free_ports(2)
    url = f"https://127.0.0.1:{client_port}"
    process = subprocess.Popen(
        [etcd_binary(), "--name", "tls", "--data-dir", str(tmp_path / "data"),
         "--listen-client-urls", url, "--advertise-client-urls", url,
         "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
         "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
         "--initial-cluster", f"tls=http://127.0.0.1:{peer_port}",
         "--cert-file", str(tmp_path / "server.pem"), "--key-file", str(tmp_path / "server.key"),
         "--client-cert-auth", "--trusted-ca-file", str(tmp_path / "ca.pem"),
         "--log-level", "warn", "--logger", "zap"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    config = ClusterConfig(etcd=(url,), node_id="org1", etcd_cacert=str(tmp_path / "ca.pem"),
                           etcd_cert=str(tmp_path / "client.pem"),
                           etcd_key=str(tmp_path / "client.key"))
    try:
        client = EtcdClient([url], ssl_context=config.ssl_context())
        wait_until(lambda: _answers(client), 20, "etcd over TLS")
        yield config
    finally:
        process.kill()
        process.wait(10)


def _answers(client: EtcdClient) -> bool:
    try:
        client.get(b"/probe", timeout_seconds=1)
        return True
    except EtcdError:
        return False


def test_a_node_with_a_client_certificate_produces_over_tls_and_one_without_is_refused(tls_etcd):
    anonymous = ClusterConfig(etcd=tls_etcd.etcd, node_id="x", etcd_cacert=tls_etcd.etcd_cacert)
    with pytest.raises(EtcdError):
        EtcdClient(list(tls_etcd.etcd), ssl_context=anonymous.ssl_context(),
                   timeout_seconds=1).get(b"/probe")
    raw = genesis_dict(consumption="upfront")
    raw["config"]["chainId"] = 7300
    node = ClusterNode(load_genesis(copy.deepcopy(raw)), cluster=tls_etcd)
    node.join("http://127.0.0.1:1")
    stop = threading.Event()
    producer = threading.Thread(target=node.run_producer, args=(stop,), daemon=True)
    producer.start()
    try:
        node.send_transaction(sign(node.chain, USER_KEYS[0], VAULT, value=ETHER,
                                   data=calldata("deposit"), gas=300_000, nonce=0, chain_id=7300))
        wait_until(lambda: node.chain.get_canonical_head().block_number == 1, 10, "block 1")
        assert node.member.blocks.head().number == 1  # committed to etcd over TLS
        assert node.cluster_status()["role"] == "producer"
    finally:
        stop.set()
        producer.join(10)
        node.close()
