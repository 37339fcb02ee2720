"""A producer candidate in its own process, so a test can SIGSTOP or SIGKILL it.

    python -m tests.support.candidate ETCD_URLS CHAIN_ID GENESIS_HEX NODE_ID [TTL]

Prints one JSON line per event on stdout: {"event": "leader", "revision": R} when elected.
Reads commands on stdin, one per line, answering each with one JSON line:
  status                        -> {"is_leader": bool, "leader": node id or null}
  append NUMBER PARENT_HEX      -> appends a block with the fence it was elected with (even if it
                                   has lost it since): {"status": "committed"|"head moved"|"fenced"}
"""
from __future__ import annotations

import json
import sys

from fee_plugin.node.cluster import BlockLog, ChainKeys, Election, EtcdClient, Session
from tests.support.blocks import make_block


def say(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main() -> None:
    urls, chain_id, genesis_hex, node_id = sys.argv[1:5]
    ttl = int(sys.argv[5]) if len(sys.argv) > 5 else 2
    keys = ChainKeys(int(chain_id), bytes.fromhex(genesis_hex))
    client = EtcdClient(urls)
    session = Session(client, ttl_seconds=ttl).start()
    election = Election(session, keys.election, node_id, f"http://{node_id}.invalid").start()
    if not election.wait_until_leader(30):
        say({"event": "not elected", "leader": election.leader_id})
        return
    fence = election.fence
    say({"event": "leader", "revision": fence.revision})
    log = BlockLog(client, keys)
    for line in sys.stdin:
        words = line.split()
        if words == ["status"]:
            say({"is_leader": election.is_leader, "leader": election.leader_id})
        elif words and words[0] == "append":
            number, parent = int(words[1]), bytes.fromhex(words[2])
            data, block_hash = make_block(number, parent)
            result = log.append(number, parent, block_hash, data, fence)
            say({"status": result.status.value})


if __name__ == "__main__":
    main()
