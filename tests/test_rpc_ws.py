"""WebSocket on the HTTP port: every method, the same limits, eth_subscribe (newHeads, logs,
newPendingTransactions) in geth's shapes, bounded send queues (a slow subscriber is dropped
and nobody waits for it); CORS, virtual hosts and WebSocket origins."""
import asyncio
import base64
import http.client
import json
import os
import socket
import time

import aiohttp
import pytest
from eth_utils import encode_hex, to_checksum_address

from fee_plugin.node.rpc import HttpServer, RpcApi, RpcLimits
from fee_plugin.node.rpc.cors import AccessRules
from fee_plugin.vault import FEE_CHARGED_TOPIC

from .support.chain import USER_KEYS, VAULT, sign
from .support.nodes import clocked_node, deposit, transfer
from .support.geth_shapes import GETH_HEADER

ALICE = USER_KEYS[0]
WAIT_SECONDS = 10


@pytest.fixture
def served(request):
    limits, access, ws_port = getattr(request, "param", (RpcLimits(), AccessRules(), None))
    node, clock = clocked_node()
    deposit(node, clock, ALICE)
    server = HttpServer(RpcApi(node, limits), "127.0.0.1", 0, access=access, ws_port=ws_port).start()
    yield node, clock, server
    server.stop()


def ws_url(server) -> str:
    return server.ws_url


def message(method, *params, request_id=1):
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": list(params)}


async def receive(ws, predicate, seconds=WAIT_SECONDS):
    """The next message satisfying `predicate` (others are skipped)."""
    deadline = time.monotonic() + seconds
    while True:
        item = await asyncio.wait_for(ws.receive_json(), max(0.01, deadline - time.monotonic()))
        if predicate(item):
            return item


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 60))


def test_json_rpc_over_websocket_with_the_same_limits(served):
    node, _, server = served

    async def scenario():
        async with aiohttp.ClientSession() as session, session.ws_connect(ws_url(server)) as ws:
            await ws.send_json(message("eth_chainId"))
            assert (await ws.receive_json())["result"] == "0x539"
            await ws.send_json([message("eth_blockNumber", request_id=1), message("net_version", request_id=2)])
            assert sorted(r["id"] for r in await ws.receive_json()) == [1, 2]
            await ws.send_str("[" * 100)
            assert (await ws.receive_json())["error"]["message"] == "JSON nested deeper than 64 levels"
            await ws.send_json([message("eth_chainId")] * 1001)
            assert (await ws.receive_json())["error"]["message"] == "batch must hold 1..1000 requests"
            await ws.send_str("{not json")
            assert (await ws.receive_json())["error"]["code"] == -32700
            try:  # over the body limit: the server closes (1009) while the client may still write
                await ws.send_str(" " * (5 * 1024 * 1024 + 1))
                await ws.receive()
            except ConnectionError:
                pass
            deadline = time.monotonic() + WAIT_SECONDS
            while server.websockets.connections and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert not server.websockets.connections
        async with aiohttp.ClientSession() as session, session.ws_connect(ws_url(server)) as ws:
            await ws.send_json(message("eth_chainId"))
            assert (await ws.receive_json())["result"] == "0x539"  # and the server goes on

    run(scenario())


def test_subscriptions_deliver_heads_logs_and_pending_transactions(served):
    node, clock, server = served

    async def scenario():
        async with aiohttp.ClientSession() as session, session.ws_connect(ws_url(server)) as ws:
            ids = {}
            for kind, params in [("heads", ["newHeads"]), ("pending", ["newPendingTransactions"]),
                                 ("full", ["newPendingTransactions", True]),
                                 ("logs", ["logs", {"address": to_checksum_address(VAULT),
                                                    "topics": [encode_hex(FEE_CHARGED_TOPIC.to_bytes(32, "big"))]}]),
                                 ("none", ["logs", {"address": "0x" + "11" * 20}])]:
                await ws.send_json(message("eth_subscribe", *params, request_id=kind))
                ids[kind] = (await receive(ws, lambda m: m.get("id") == kind))["result"]
            by_id = {v: k for k, v in ids.items()}
            tx = transfer(node, ALICE, 1)
            await asyncio.to_thread(node.send_transaction, tx)
            got = {}
            while len(got) < 2:
                note = await receive(ws, lambda m: m.get("method") == "eth_subscription")
                got[by_id[note["params"]["subscription"]]] = note["params"]["result"]
            assert got["pending"] == encode_hex(tx.hash) and got["full"]["hash"] == encode_hex(tx.hash)
            clock.advance(1)
            block = await asyncio.to_thread(node.produce)
            got = {}
            while len(got) < 2:
                note = await receive(ws, lambda m: m.get("method") == "eth_subscription")
                got[by_id[note["params"]["subscription"]]] = note["params"]["result"]
            assert set(got["heads"]) == GETH_HEADER and got["heads"]["hash"] == encode_hex(block.hash)
            assert got["logs"]["transactionHash"] == encode_hex(tx.hash) and got["logs"]["removed"] is False
            await ws.send_json(message("eth_unsubscribe", ids["heads"], request_id="u"))
            assert (await receive(ws, lambda m: m.get("id") == "u"))["result"] is True
            await ws.send_json(message("eth_unsubscribe", ids["heads"], request_id="again"))
            error = (await receive(ws, lambda m: m.get("id") == "again"))["error"]
            assert error == {"code": -32000, "message": "subscription not found"}
            await ws.send_json(message("eth_subscribe", "syncing-nope", request_id="bad"))
            error = (await receive(ws, lambda m: m.get("id") == "bad"))["error"]
            assert error["code"] == -32601 and 'no "syncing-nope" subscription' in error["message"]

    run(scenario())


def kernel_send_buffer_max() -> int:
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as limits:
            return int(limits.read().split()[2])
    except (OSError, IndexError, ValueError):
        return 4 * 2**20


@pytest.mark.parametrize("served", [(RpcLimits(ws_send_queue=4), AccessRules(), None)], indirect=True)
def test_a_slow_subscriber_is_dropped_and_the_producer_never_waits(served, caplog):
    node, clock, server = served
    port = server.port
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    client.sendall((f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    assert b"101" in client.recv(1024).split(b"\r\n")[0]
    body = json.dumps(message("eth_subscribe", "newPendingTransactions", True)).encode()
    mask = os.urandom(4)
    client.sendall(bytes([0x81, 0x80 | 126]) + len(body).to_bytes(2, "big") + mask
                   + bytes(b ^ mask[i % 4] for i, b in enumerate(body)))
    deadline = time.monotonic() + WAIT_SECONDS  # active once its reply is queued; the client never reads
    while not any(c.subscriber.active("newPendingTransactions") for c in list(server.websockets.connections)):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    started = time.monotonic()
    # Notifications of ~200 KB, twice what the kernel's socket buffers can hold (a send
    # buffer autotunes up to tcp_wmem's maximum, 4 MiB by default): only the send queue's
    # limit can then absorb them, and it must drop the client.
    count = min(100, max(40, 2 * kernel_send_buffer_max() // 200_000 + 1))
    for nonce in range(1, count + 1):
        node.send_transaction(sign(node.chain, ALICE, b"\x42" * 20, data=bytes(100_000), gas=1_100_000,
                                   nonce=nonce))
    clock.advance(1)
    assert node.produce() is not None
    assert time.monotonic() - started < 20
    deadline = time.monotonic() + WAIT_SECONDS
    while server.websockets.connections and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not server.websockets.connections  # dropped
    assert "messages waiting to be sent" in caplog.text
    client.close()


def test_cors_is_off_by_default(served):
    _, _, server = served
    status, headers, _ = http_request(server, "OPTIONS", {"Origin": "http://dapp.example",
                                                          "Access-Control-Request-Method": "POST"})
    assert status == 405 and "access-control-allow-origin" not in headers
    status, headers, _ = http_request(server, "POST", {"Origin": "http://dapp.example"}, message("eth_chainId"))
    assert status == 200 and "access-control-allow-origin" not in headers


@pytest.mark.parametrize("served", [(RpcLimits(), AccessRules(cors_origins=("http://dapp.example",)), None)],
                         indirect=True)
def test_cors_preflight_and_responses_for_allowed_origins(served):
    _, _, server = served
    preflight = {"Origin": "http://dapp.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type"}
    status, headers, _ = http_request(server, "OPTIONS", preflight)
    assert status == 204 and headers["access-control-allow-origin"] == "http://dapp.example"
    assert headers["access-control-allow-methods"] == "POST" and headers["access-control-allow-headers"] == "content-type"
    assert headers["access-control-max-age"] == "600"
    status, headers, _ = http_request(server, "OPTIONS", preflight | {"Origin": "http://evil.example"})
    assert status == 204 and "access-control-allow-origin" not in headers
    status, headers, body = http_request(server, "POST", {"Origin": "http://dapp.example"}, message("eth_chainId"))
    assert headers["access-control-allow-origin"] == "http://dapp.example" and body["result"] == "0x539"


@pytest.mark.parametrize("served", [(RpcLimits(), AccessRules(cors_origins=("*",)), None)], indirect=True)
def test_cors_wildcard_by_explicit_choice(served):
    _, _, server = served
    status, headers, _ = http_request(server, "POST", {"Origin": "http://any.example"}, message("eth_chainId"))
    assert status == 200 and headers["access-control-allow-origin"] == "*"


def test_virtual_hosts_default_to_localhost_and_ip_addresses(served):
    _, _, server = served
    for host in (f"localhost:{server.port}", f"127.0.0.1:{server.port}", "[::1]", "LOCALHOST"):
        assert http_request(server, "POST", {"Host": host}, message("eth_chainId"))[0] == 200, host
    status, _, text = http_request(server, "POST", {"Host": "attacker.example"}, message("eth_chainId"))
    assert status == 403 and text == "invalid host specified\n"


@pytest.mark.parametrize("served", [(RpcLimits(), AccessRules(vhosts=("*",)), None)], indirect=True)
def test_virtual_hosts_wildcard(served):
    _, _, server = served
    assert http_request(server, "POST", {"Host": "anything.example"}, message("eth_chainId"))[0] == 200


def test_websocket_origins_default_to_localhost(served):
    _, _, server = served
    assert ws_status(server, {"Origin": "http://evil.example"}) == 403
    assert ws_status(server, {"Origin": "http://localhost:3000"}) == 101
    assert ws_status(server, {"Origin": f"http://{socket.gethostname()}"}) == 101
    assert ws_status(server, {}) == 101  # not a browser


@pytest.mark.parametrize("served", [(RpcLimits(), AccessRules(ws_origins=("https://dapp.example",)), None)],
                         indirect=True)
def test_websocket_origins_configured(served):
    _, _, server = served
    assert ws_status(server, {"Origin": "https://dapp.example"}) == 101
    assert ws_status(server, {"Origin": "http://dapp.example"}) == 403  # scheme differs
    assert ws_status(server, {"Origin": "http://localhost"}) == 403


@pytest.mark.parametrize("served", [(RpcLimits(), AccessRules(), 0)], indirect=True)
def test_a_separate_websocket_port(served):
    _, _, server = served
    assert server.ws_port not in (None, 0, server.port)

    async def scenario():
        async with aiohttp.ClientSession() as session, session.ws_connect(ws_url(server)) as ws:
            await ws.send_json(message("eth_chainId"))
            return (await ws.receive_json())["result"]

    assert run(scenario()) == "0x539"


def http_request(server, method, headers, body=None):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT_SECONDS)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        connection.request(method, "/", payload, {"Content-Type": "application/json", **headers})
        response = connection.getresponse()
        data = response.read()
        response_headers = {k.lower(): v for k, v in response.getheaders()}
        if response_headers.get("content-type", "").startswith("application/json") and data:
            return response.status, response_headers, json.loads(data)
        return response.status, response_headers, data.decode()
    finally:
        connection.close()


def ws_status(server, headers) -> int:
    key = base64.b64encode(os.urandom(16)).decode()
    status, _, _ = http_request(server, "GET", {"Upgrade": "websocket", "Connection": "Upgrade",
                                               "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13", **headers})
    return status
