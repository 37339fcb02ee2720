"""Local etcd members on loopback, for `fee-node devnet` and the tests.

Starts N members of one etcd cluster (the `etcd` found on PATH) on free loopback ports, with
their data directories under one directory, waits until every member reports healthy (bounded),
and stops them by pid. The layout (names, ports) is written to `<dir>/devnet.json`, so starting
again on the same directory restarts the same members on their data: the cluster comes back
with everything it had committed.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

LAYOUT_FILE = "devnet.json"
START_ATTEMPTS_MAX = 3
HEALTH_POLL_SECONDS = 0.05
STOP_TIMEOUT_SECONDS = 10.0


class DevnetError(RuntimeError):
    """A member did not start, did not become healthy in time, or would not stop."""


@dataclass(frozen=True)
class Member:
    """One etcd member: its name, loopback URLs and data directory."""

    name: str
    client_url: str
    peer_url: str
    data_dir: Path


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Ports the kernel hands out as free right now (all distinct)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def etcd_binary() -> str:
    """The etcd executable on PATH, or a DevnetError saying how to install it."""
    path = shutil.which("etcd")
    if path is None:
        raise DevnetError("etcd not found on PATH (Debian/Ubuntu: apt-get install etcd-server)")
    return path


class Devnet:
    """N etcd members of one cluster on loopback, started and stopped by pid."""

    def __init__(self, directory: Path, members: list[Member], *, cluster_token: str,
                 max_request_bytes: int | None = None) -> None:
        assert members, "a devnet has at least one member"
        self.directory = directory
        self.members = tuple(members)
        self.cluster_token = cluster_token
        self.max_request_bytes = max_request_bytes
        self._processes: dict[str, subprocess.Popen] = {}

    @property
    def client_urls(self) -> list[str]:
        return [member.client_url for member in self.members]

    @property
    def pids(self) -> dict[str, int | None]:
        """Member name -> pid of its running process (None when stopped)."""
        return {m.name: (self._processes[m.name].pid if self.is_running(m.name) else None)
                for m in self.members}

    def member(self, name_or_index: str | int) -> Member:
        if isinstance(name_or_index, int):
            return self.members[name_or_index]
        for member in self.members:
            if member.name == name_or_index:
                return member
        raise KeyError(f"no member {name_or_index!r} in {[m.name for m in self.members]}")

    def is_running(self, name: str) -> bool:
        process = self._processes.get(name)
        return process is not None and process.poll() is None

    def start_member(self, name_or_index: str | int) -> int:
        """Start one member (on its existing data, if any); returns its pid."""
        member = self.member(name_or_index)
        assert not self.is_running(member.name), f"member {member.name} is already running"
        initial_cluster = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        state = "existing" if (member.data_dir / "member").exists() else "new"
        command = [
            etcd_binary(),
            "--name", member.name,
            "--data-dir", str(member.data_dir),
            "--listen-client-urls", member.client_url,
            "--advertise-client-urls", member.client_url,
            "--listen-peer-urls", member.peer_url,
            "--initial-advertise-peer-urls", member.peer_url,
            "--initial-cluster", initial_cluster,
            "--initial-cluster-state", state,
            "--initial-cluster-token", self.cluster_token,
            "--logger", "zap",
            "--log-level", "warn",
        ]
        if self.max_request_bytes is not None:
            command += ["--max-request-bytes", str(self.max_request_bytes)]
        with open(self.directory / f"{member.name}.log", "ab") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        self._processes[member.name] = process
        return process.pid

    def start(self, timeout_seconds: float = 30.0) -> None:
        """Start every member that is not running and wait until all are healthy."""
        for member in self.members:
            if not self.is_running(member.name):
                self.start_member(member.name)
        self.wait_healthy(timeout_seconds)

    def stop_member(self, name_or_index: str | int, sig: int = signal.SIGKILL,
                    timeout_seconds: float = STOP_TIMEOUT_SECONDS) -> None:
        """Send `sig` to the member's pid and wait (bounded) until the process has exited."""
        member = self.member(name_or_index)
        process = self._processes.get(member.name)
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, sig)
        try:
            process.wait(timeout_seconds)
        except subprocess.TimeoutExpired:
            raise DevnetError(f"member {member.name} (pid {process.pid}) still running "
                              f"{timeout_seconds} s after signal {sig}") from None

    def pause_member(self, name_or_index: str | int) -> None:
        """SIGSTOP the member: it holds its sockets open but answers nothing."""
        os.kill(self._processes[self.member(name_or_index).name].pid, signal.SIGSTOP)

    def resume_member(self, name_or_index: str | int) -> None:
        os.kill(self._processes[self.member(name_or_index).name].pid, signal.SIGCONT)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop every running member (SIGCONT first, so a paused one can act on `sig`)."""
        for member in self.members:
            if self.is_running(member.name):
                os.kill(self._processes[member.name].pid, signal.SIGCONT)
                self.stop_member(member.name, sig)

    def is_healthy(self, name_or_index: str | int, timeout_seconds: float = 1.0) -> bool:
        """The member answers /health with health true (it is running and sees a leader)."""
        member = self.member(name_or_index)
        try:
            with urllib.request.urlopen(member.client_url + "/health",
                                        timeout=timeout_seconds) as response:
                return json.loads(response.read()).get("health") == "true"
        except (OSError, ValueError, urllib.error.URLError):
            return False

    def wait_healthy(self, timeout_seconds: float = 30.0, names: list[str] | None = None) -> None:
        """Wait until each running member (or each named one) is healthy, at most `timeout_seconds`."""
        deadline = time.monotonic() + timeout_seconds
        waiting = list(names) if names is not None else [m.name for m in self.members
                                                          if self.is_running(m.name)]
        while waiting:
            for name in list(waiting):
                process = self._processes.get(name)
                if process is not None and process.poll() is not None:
                    raise DevnetError(f"member {name} exited with code {process.returncode}; "
                                      f"see {self.directory / (name + '.log')}")
                if self.is_healthy(name):
                    waiting.remove(name)
            if waiting and time.monotonic() > deadline:
                raise DevnetError(f"members {waiting} not healthy after {timeout_seconds} s")
            if waiting:
                time.sleep(HEALTH_POLL_SECONDS)

    def save_layout(self) -> None:
        layout = {
            "cluster_token": self.cluster_token,
            "max_request_bytes": self.max_request_bytes,
            "members": [{"name": m.name, "client_url": m.client_url, "peer_url": m.peer_url}
                        for m in self.members],
        }
        (self.directory / LAYOUT_FILE).write_text(json.dumps(layout, indent=2) + "\n")

    @classmethod
    def load_layout(cls, directory: Path) -> Devnet:
        layout = json.loads((directory / LAYOUT_FILE).read_text())
        members = [Member(m["name"], m["client_url"], m["peer_url"], directory / m["name"])
                   for m in layout["members"]]
        return cls(directory, members, cluster_token=layout["cluster_token"],
                   max_request_bytes=layout["max_request_bytes"])


def new_layout(directory: Path, count: int, host: str = "127.0.0.1",
               max_request_bytes: int | None = None) -> Devnet:
    """A fresh layout of `count` members on free ports of `host`, data under `directory`."""
    ports = free_ports(2 * count, host)
    members = [Member(f"m{i}", f"http://{host}:{ports[2 * i]}",
                      f"http://{host}:{ports[2 * i + 1]}", directory / f"m{i}")
               for i in range(count)]
    token = f"fee-devnet-{os.getpid()}-{ports[0]}"
    return Devnet(directory, members, cluster_token=token, max_request_bytes=max_request_bytes)


def start_devnet(directory: str | os.PathLike, count: int = 3, *, host: str = "127.0.0.1",
                 max_request_bytes: int | None = None,
                 timeout_seconds: float = 30.0) -> Devnet:
    """Start (or restart, if `directory` holds a devnet) `count` etcd members and wait healthy.

    A new cluster's ports are picked free just before etcd binds them; if another process takes
    one in between, the members are stopped and the cluster is laid out again on other ports
    (at most START_ATTEMPTS_MAX times). A restarted cluster reuses its recorded ports.
    """
    assert 1 <= count <= 9, f"devnet size {count} outside 1..9"
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if (directory / LAYOUT_FILE).exists():
        devnet = Devnet.load_layout(directory)
        try:
            devnet.start(timeout_seconds)
        except BaseException:
            devnet.stop(signal.SIGKILL)
            raise
        return devnet
    for attempt in range(1, START_ATTEMPTS_MAX + 1):
        devnet = new_layout(directory, count, host, max_request_bytes)
        try:
            devnet.start(timeout_seconds)
        except DevnetError:
            devnet.stop(signal.SIGKILL)
            for member in devnet.members:
                shutil.rmtree(member.data_dir, ignore_errors=True)
            if attempt == START_ATTEMPTS_MAX:
                raise
            continue
        except BaseException:
            devnet.stop(signal.SIGKILL)
            raise
        devnet.save_layout()
        return devnet
    raise AssertionError("unreachable")
