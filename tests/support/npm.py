"""The npm packages of tests/js (ethers, solc, OpenZeppelin), installed into a cache directory.

The directory is keyed by a hash of the committed package.json and package-lock.json, so
the exact locked versions come from the npm registry once and are reused until the lock
changes; nothing is installed into the repository. `python -m tests.support.npm` installs
them (scripts/test does, before pytest).
"""
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

JS_DIR = Path(__file__).resolve().parents[1] / "js"
LOCK_FILES = ("package.json", "package-lock.json")
INSTALL_TIMEOUT_SECONDS = 600
DONE_MARKER = ".installed"


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fee-plugin-npm"


def deps_dir() -> Path:
    digest = hashlib.sha256(b"".join((JS_DIR / name).read_bytes() for name in LOCK_FILES))
    return cache_root() / digest.hexdigest()[:16]


def node_missing() -> Optional[str]:
    """Why the JS tests cannot run here, or None."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            return f"{tool} is not on PATH (Node.js 20 or later is needed for the ethers tests)"
    return None


def install() -> Path:
    """The directory whose node_modules holds the locked packages (installed if needed)."""
    target = deps_dir()
    if (target / DONE_MARKER).exists():
        return target
    target.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another pytest process may be installing too
        if not (target / DONE_MARKER).exists():
            for name in LOCK_FILES:
                shutil.copyfile(JS_DIR / name, target / name)
            subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
                           cwd=target, check=True, timeout=INSTALL_TIMEOUT_SECONDS)
            (target / DONE_MARKER).write_text("ok\n")
    return target


if __name__ == "__main__":
    reason = node_missing()
    if reason is not None:
        sys.exit(f"cannot install the JS test packages: {reason}")
    print(install())
