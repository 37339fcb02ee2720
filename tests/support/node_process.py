"""A real `fee-node run` subprocess on a free loopback port, stopped by its process id."""
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import List, Optional

from web3 import HTTPProvider, Web3

START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 30
REPO = Path(__file__).resolve().parents[2]
EXAMPLE_GENESIS = REPO / "examples" / "genesis.json"


class NodeProcess:
    """`fee-node run --port 0`; the bound URL comes from its "listening on" line (and, with
    `--metrics-port`, the metrics server's URL from the same line: `metrics_url`).

    stderr is drained by a thread into `self.lines`, so a chatty node never blocks on a
    full pipe, and the start waits on that line (bounded), not on a sleep.
    """

    def __init__(self, genesis: Path, datadir: Optional[Path] = None, extra: List[str] = ()) -> None:
        args = [sys.executable, "-m", "fee_plugin.node.cli", "run", "--genesis", str(genesis),
                "--port", "0", *extra]
        args += ["--datadir", str(datadir)] if datadir is not None else ["--memory"]
        self.process = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
        self.pid = self.process.pid
        self.lines: List[str] = []
        self._listening = threading.Event()
        self.url = None
        self.metrics_url: Optional[str] = None
        threading.Thread(target=self._drain, daemon=True).start()
        if not self._listening.wait(START_TIMEOUT_SECONDS) or self.url is None:
            self.kill()
            raise AssertionError("fee-node did not start:\n" + "".join(self.lines))
        self.w3 = Web3(HTTPProvider(self.url, request_kwargs={"timeout": 30}))

    def _drain(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line)
            if "listening on" in line and self.url is None:
                self.url = line.split("listening on ")[1].split()[0]
                if "; metrics " in line:
                    self.metrics_url = line.split("; metrics ")[1].split()[0].rstrip(";)")
                self._listening.set()
        self._listening.set()  # exited: stop waiting

    def rpc(self, method: str, *params):
        return self.w3.provider.make_request(method, list(params))

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=STOP_TIMEOUT_SECONDS)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT_SECONDS)


def write_genesis(path: Path, base: Path = EXAMPLE_GENESIS, alloc=None, **fee_overrides) -> Path:
    raw = json.loads(base.read_text())
    raw["config"]["feePlugin"].update(fee_overrides)
    for owner, balance in (alloc or {}).items():
        raw["alloc"][owner] = {"balance": str(balance)}
    path.write_text(json.dumps(raw))
    return path
