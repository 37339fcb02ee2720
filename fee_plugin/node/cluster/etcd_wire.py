"""etcd v3's JSON gateway, the shapes: errors, key-values, transaction pieces, endpoints.

Keys and values travel base64-encoded; revisions and lease ids as decimal strings.
"""
from __future__ import annotations

import base64
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass

# hasleader: a member that has lost its Raft leader refuses at once ("no leader") instead of
# holding the request until etcd's own timeout, and never serves a minority partition's view.
REQUEST_HEADERS = {"Content-Type": "application/json", "Grpc-Metadata-hasleader": "true"}
# gRPC codes the gateway passes through for a member without a leader, a proposal that timed
# out, or a leader change: try another member.
RETRIABLE_CODES = frozenset({4, 14})


class EtcdError(Exception):
    """Base of the errors this client raises."""


class EtcdUnavailable(EtcdError):
    """No member answered in time; a write's outcome is unknown (read it back to know)."""


class EtcdRequestError(EtcdError):
    """etcd answered with an error that retrying would not change (e.g. request too large)."""

    def __init__(self, path: str, code: int, message: str) -> None:
        super().__init__(f"etcd {path}: {message} (code {code})")
        self.path = path
        self.code = code
        self.message = message


class EtcdCompacted(EtcdError):
    """The revision asked for is older than etcd's compacted history."""

    def __init__(self, revision: int, compact_revision: int | None = None) -> None:
        kept = f" (etcd keeps history from revision {compact_revision})" if compact_revision else ""
        super().__init__(f"revision {revision} is compacted{kept}")
        self.revision = revision
        self.compact_revision = compact_revision


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


def prefix_end(prefix: bytes) -> bytes:
    """The range_end that makes [prefix, range_end) every key starting with `prefix`."""
    trimmed = prefix.rstrip(b"\xff")
    assert trimmed, "a prefix of only 0xff bytes has no range end"
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


@dataclass(frozen=True)
class KeyValue:
    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int

    @classmethod
    def from_json(cls, kv: dict) -> KeyValue:
        return cls(unb64(kv["key"]), unb64(kv.get("value", "")),
                   int(kv.get("create_revision", 0)), int(kv.get("mod_revision", 0)),
                   int(kv.get("version", 0)), int(kv.get("lease", 0)))


@dataclass(frozen=True)
class RangeResult:
    kvs: tuple[KeyValue, ...]
    revision: int
    more: bool
    count: int

    @classmethod
    def from_json(cls, answer: dict, revision: int) -> RangeResult:
        kvs = tuple(KeyValue.from_json(kv) for kv in answer.get("kvs", ()))
        return cls(kvs, revision, bool(answer.get("more", False)), int(answer.get("count", 0)))


@dataclass(frozen=True)
class TxnResult:
    succeeded: bool
    revision: int
    responses: tuple[dict, ...]

    def range(self, index: int) -> RangeResult:
        """The answer of the `index`-th operation of the branch that ran, a range."""
        return RangeResult.from_json(self.responses[index]["response_range"], self.revision)


@dataclass(frozen=True)
class WatchEvent:
    kind: str  # "PUT" or "DELETE"
    kv: KeyValue


@dataclass(frozen=True)
class WatchBatch:
    revision: int
    events: tuple[WatchEvent, ...]


# Transaction pieces, in the gateway's JSON shape.
def compare_value(key: bytes, value: bytes) -> dict:
    return {"key": b64(key), "target": "VALUE", "result": "EQUAL", "value": b64(value)}


def compare_create_revision(key: bytes, revision: int) -> dict:
    """Key exists with this create revision (revision 0: the key does not exist)."""
    return {"key": b64(key), "target": "CREATE", "result": "EQUAL",
            "create_revision": str(revision)}


def put_op(key: bytes, value: bytes, lease: int = 0) -> dict:
    put = {"key": b64(key), "value": b64(value)}
    if lease:
        put["lease"] = str(lease)
    return {"request_put": put}


def range_op(key: bytes, range_end: bytes | None = None) -> dict:
    request = {"key": b64(key)}
    if range_end is not None:
        request["range_end"] = b64(range_end)
    return {"request_range": request}


def delete_op(key: bytes) -> dict:
    return {"request_delete_range": {"key": b64(key)}}


@dataclass(frozen=True)
class Endpoint:
    url: str
    scheme: str
    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        parts = urllib.parse.urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"etcd endpoint {url!r} is not http(s)://host:port")
        port = parts.port or 2379
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        return cls(f"{parts.scheme}://{host}:{port}", parts.scheme, parts.hostname, port)


def parse_endpoints(urls: str | Sequence[str]) -> tuple[Endpoint, ...]:
    """`"URL,URL"` or a list of URLs -> endpoints (at least one, no duplicates)."""
    items = urls.split(",") if isinstance(urls, str) else list(urls)
    endpoints = tuple(Endpoint.parse(url) for url in items if url.strip())
    if not endpoints:
        raise ValueError("no etcd endpoint given")
    if len({e.url for e in endpoints}) != len(endpoints):
        raise ValueError(f"duplicate etcd endpoints in {[e.url for e in endpoints]}")
    return endpoints
