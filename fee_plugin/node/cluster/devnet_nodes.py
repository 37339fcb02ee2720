"""A whole cluster on loopback: etcd members (devnet.py) and one `fee-node run` per member.

For `fee-node devnet`, the cluster tests and the cluster benchmark. Everything lives under one
directory: `etcd/` (the members), `genesis.json` (copied at creation, so a restart uses the
same chain), `nodes.json` (node ids and ports, so URLs stay the same across restarts),
`node<i>/` (each node's LevelDB and pool journal) and `node<i>.log`. Nodes are started and
stopped by pid; kill, pause and wipe are there for the failure tests.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .devnet import Devnet, DevnetError, free_ports, start_devnet

LAYOUT_FILE = "nodes.json"
GENESIS_FILE = "genesis.json"
DEFAULT_GENESIS = Path("examples") / "genesis.json"
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0
POLL_SECONDS = 0.02
LISTENING = "listening on "


@dataclass(frozen=True)
class NodeSpec:
    node_id: str
    port: int
    datadir: Path
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class FeeDevnet:
    """etcd members plus fee nodes joined to them, all on loopback, started by pid."""

    def __init__(self, directory: Path, etcd: Devnet, specs: list[NodeSpec],
                 extra_args: list[str]) -> None:
        self.directory = directory
        self.etcd = etcd
        self.specs = specs
        self.extra_args = list(extra_args)
        self.genesis_path = directory / GENESIS_FILE
        self._processes: dict[int, subprocess.Popen] = {}

    @classmethod
    def open(cls, directory: str | os.PathLike, count: int, genesis: str | os.PathLike | None = None,
             extra_args: list[str] = ()) -> FeeDevnet:
        """Start the etcd members (new, or again on their data) and lay out the nodes."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        genesis_copy = directory / GENESIS_FILE
        if not genesis_copy.exists():
            source = Path(genesis) if genesis is not None else DEFAULT_GENESIS
            if not source.exists():
                raise DevnetError(f"no genesis: {source} not found (give --genesis)")
            shutil.copyfile(source, genesis_copy)
        etcd = start_devnet(directory / "etcd", count)
        layout = directory / LAYOUT_FILE
        if layout.exists():
            nodes = json.loads(layout.read_text())["nodes"]
        else:
            nodes = [{"id": f"node{i}", "port": port} for i, port in enumerate(free_ports(count))]
            layout.write_text(json.dumps({"nodes": nodes}, indent=2) + "\n")
        specs = [NodeSpec(n["id"], int(n["port"]), directory / n["id"], directory / f"{n['id']}.log")
                 for n in nodes]
        return cls(directory, etcd, specs, list(extra_args))

    @property
    def chain_id(self) -> int:
        return int(json.loads(self.genesis_path.read_text())["config"]["chainId"])

    @property
    def urls(self) -> list[str]:
        return [spec.url for spec in self.specs]

    def command(self, index: int) -> list[str]:
        spec = self.specs[index]
        return [sys.executable, "-m", "fee_plugin.node.cli", "run",
                "--genesis", str(self.genesis_path), "--datadir", str(spec.datadir),
                "--port", str(spec.port), "--etcd", ",".join(self.etcd.client_urls),
                "--node-id", spec.node_id, *self.extra_args]

    # -- nodes ----------------------------------------------------------------------------

    def is_running(self, index: int) -> bool:
        process = self._processes.get(index)
        return process is not None and process.poll() is None

    def pid(self, index: int) -> int:
        return self._processes[index].pid

    def spawn_node(self, index: int) -> None:
        assert not self.is_running(index), f"{self.specs[index].node_id} is already running"
        spec = self.specs[index]
        with open(spec.log_path, "a") as log:
            log.write(f"--- start {time.strftime('%H:%M:%S')}\n")
            log.flush()
            self._processes[index] = subprocess.Popen(
                self.command(index), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)

    def wait_listening(self, index: int, timeout_seconds: float = START_TIMEOUT_SECONDS) -> str:
        """Wait until the node's log says it listens (this start's line); its URL."""
        spec = self.specs[index]
        deadline = time.monotonic() + timeout_seconds
        while True:
            text = spec.log_path.read_text(errors="replace")
            current = text[text.rfind("--- start "):]
            if LISTENING in current:
                return spec.url
            process = self._processes[index]
            if process.poll() is not None:
                raise DevnetError(f"{spec.node_id} exited with code {process.returncode}:\n"
                                  f"{current[-3000:]}")
            if time.monotonic() > deadline:
                raise DevnetError(f"{spec.node_id} not listening after {timeout_seconds} s:\n"
                                  f"{current[-3000:]}")
            time.sleep(POLL_SECONDS)

    def start_node(self, index: int) -> str:
        self.spawn_node(index)
        return self.wait_listening(index)

    def start(self) -> list[str]:
        """Start every node not running (all at once) and wait until each listens."""
        started = [i for i in range(len(self.specs)) if not self.is_running(i)]
        for index in started:
            self.spawn_node(index)
        for index in started:
            self.wait_listening(index)
        return self.urls

    def stop_node(self, index: int, sig: int = signal.SIGTERM,
                  timeout_seconds: float = STOP_TIMEOUT_SECONDS) -> int | None:
        """Signal the node and wait for it to exit (SIGKILL after the timeout); exit code."""
        process = self._processes.get(index)
        if process is None:
            return None
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)  # a paused node must run to act on sig
            os.kill(process.pid, sig)
            try:
                process.wait(timeout_seconds)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout_seconds)
        return process.returncode

    def kill_node(self, index: int) -> None:
        self.stop_node(index, signal.SIGKILL)

    def pause_node(self, index: int) -> None:
        os.kill(self.pid(index), signal.SIGSTOP)

    def resume_node(self, index: int) -> None:
        os.kill(self.pid(index), signal.SIGCONT)

    def wipe_node(self, index: int) -> None:
        """Delete a stopped node's chain and pool journal."""
        assert not self.is_running(index), "stop the node before wiping it"
        shutil.rmtree(self.specs[index].datadir, ignore_errors=True)

    def exited(self) -> dict[int, int]:
        """Nodes that were started and have exited since: index -> exit code."""
        return {i: p.returncode for i, p in self._processes.items() if p.poll() is not None}

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop every node, then every etcd member."""
        try:
            for index in list(self._processes):
                if self.is_running(index):
                    os.kill(self.pid(index), signal.SIGCONT)
                    os.kill(self.pid(index), sig)
            for index in list(self._processes):
                self.stop_node(index, sig)
        finally:
            self.etcd.stop(sig)
