"""Failpoints for the failure tests: named places in the cluster code where a test makes the
process misbehave on purpose (etcd's gofail, reduced to what the tests need).

Inert unless the node's environment sets FEE_FAILPOINTS, read once at import:
`name=action[;name=action]`. The only action is `sigstop-if:<path>`: the first process that
reaches the place while <path> exists removes it (so exactly one process of a devnet, which
shares one environment, takes it) and stops itself with SIGSTOP, every thread at once; the
test creates `<path>.continued`, then resumes it with SIGCONT. A pause at a chosen line,
which a SIGSTOP sent from outside can only hit by chance.

The signal goes to the calling thread (pthread_kill), which then stops before it returns from
the call; sent to the process (os.kill) it is taken by the main thread, and the caller runs
on until the group stop reaches it (measured here: every time, long enough to send an HTTP
request). On top of that the caller goes on only once `<path>.continued` exists (at most
RESUME_TIMEOUT_SECONDS): nothing after the failpoint runs before the test lets it.

Places: `before-append` (ClusterMember.commit, after the local fence check passed and before
the fenced etcd append is sent): a producer stopped there past its lease sends its append
on a fence etcd no longer holds, so it is etcd's compare that refuses it.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time

log = logging.getLogger(__name__)

ENV = "FEE_FAILPOINTS"
SIGSTOP_IF = "sigstop-if:"
CONTINUED_SUFFIX = ".continued"
RESUME_TIMEOUT_SECONDS = 120.0
RESUME_POLL_SECONDS = 0.01


def _parse(spec: str) -> dict[str, str]:
    points = {}
    for item in filter(None, (part.strip() for part in spec.split(";"))):
        name, _, action = item.partition("=")
        if not action.startswith(SIGSTOP_IF) or not action[len(SIGSTOP_IF):]:
            raise ValueError(f"{ENV}: {item!r} is not name={SIGSTOP_IF}<path>")
        points[name.strip()] = action[len(SIGSTOP_IF):]
    return points


_POINTS = _parse(os.environ.get(ENV, ""))


def hit(name: str) -> None:
    """Reach the failpoint `name`: nothing unless FEE_FAILPOINTS arms it."""
    if not _POINTS:
        return
    path = _POINTS.get(name)
    if path is None:
        return
    try:
        os.remove(path)  # atomic: one process wins the trigger
    except FileNotFoundError:
        return
    log.warning("failpoint %s: stopping this process (SIGSTOP) until SIGCONT", name)
    signal.pthread_kill(threading.get_ident(), signal.SIGSTOP)
    continued = path + CONTINUED_SUFFIX
    deadline = time.monotonic() + RESUME_TIMEOUT_SECONDS
    while not os.path.exists(continued):
        if time.monotonic() > deadline:
            log.warning("failpoint %s: no %s after %.0f s; going on", name, continued,
                        RESUME_TIMEOUT_SECONDS)
            break
        time.sleep(RESUME_POLL_SECONDS)
    log.warning("failpoint %s: resumed", name)
