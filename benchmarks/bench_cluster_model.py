"""The throughput model of bench_cluster.py, and its markdown report.

Work per transaction, from the CPU seconds every process spent per mined transaction:
- single node: c1 = admission (HTTP, decode, sender recovery, pool checks, journal fsync)
  + its share of building the block (execution, tries, state root, LevelDB batch);
- cluster producer: cP = c1 + the etcd commit of each block + receiving forwarded
  transactions (2 of 3 arrive in a follower's batch rather than from a client);
- cluster follower: cF = admission of its own clients' transactions + forwarding them
  + importing every block (full re-execution: the producer's build cost again);
- etcd members: cE (three, each applying every block).

Each run's rate is the tighter of two limits: every process is one Python interpreter (one
core at most, the GIL), and all the processes together share the machine's cores:

    rate = min(1 / max(CPU per tx of any one process), cores / Σ CPU per tx of all of them)

Here (2 cores shared by the nodes, the etcd members and the clients) the single node is
held by its one interpreter and the cluster by the two cores; on three machines (one fee node
and one etcd member each, ≥ 2 cores, clients elsewhere) by the busiest process:
cluster / single = c1 / max(cP, cF, one etcd member). The per-transaction CPU figures are
measured in the same runs; the rates are predicted from them, not taken from the runs.
"""
from __future__ import annotations


def _rate_per_ms(per_process_ms: dict, cores: int) -> float:
    """Transactions per millisecond of CPU the run can do: the two limits above."""
    return min(1 / max(per_process_ms.values()), cores / sum(per_process_ms.values()))


def model(throughput: dict, cores: int = 2) -> dict:
    single = throughput["single"]["cpu_seconds_per_mined_tx_ms"]
    cluster = throughput["cluster"]["cpu_seconds_per_mined_tx_ms"]
    c1, clients_1 = single["node"], single["clients"]
    cp = cluster["producer"]
    cf = max(cluster["follower_a"], cluster["follower_b"])
    etcd = {name: ms for name, ms in cluster.items() if name.startswith("etcd_")}
    single_here, cluster_here = _rate_per_ms(single, cores), _rate_per_ms(cluster, cores)
    return {
        "ms_per_tx": {"single_node": c1, "producer": cp, "follower_max": round(cf, 3),
                      "etcd_all_members": round(sum(etcd.values()), 3),
                      "etcd_busiest_member": round(max(etcd.values()), 3),
                      "clients_single": clients_1, "clients_cluster": cluster["clients"]},
        "predicted_tx_per_s_this_machine": {"single": round(1000 * single_here),
                                            "cluster": round(1000 * cluster_here)},
        "predicted_ratio_this_machine": round(cluster_here / single_here, 3),
        "predicted_ratio_three_machines": round(c1 / max(cp, cf, max(etcd.values())), 3),
        "measured_ratio_this_machine": throughput["cluster_over_single"],
        "cores_busy": {"single": throughput["single"]["cores_busy"],
                       "cluster": throughput["cluster"]["cores_busy"]},
    }


def render(results: dict) -> str:
    t, m, f, r = results["throughput"], results["model"], results["failover"], results["resync"]
    single, cluster = t["single"], t["cluster"]
    lag = cluster["follower_lag_blocks"]
    ms = m["ms_per_tx"]
    lines = [
        "# Cluster benchmark", "",
        f"Command: `{results['command']}` ({results['started_utc']}, {results['cpus']} CPUs: "
        "every process of both runs shares them)", "",
        "## Throughput: three nodes on etcd vs one node, same load", "",
        "| run | mined tx/s | accepted tx/s | blocks | tx/block | refused sends |",
        "|---|---|---|---|---|---|",
        f"| single node | {single['mined_tx_per_s']} | {single['accepted_tx_per_s']} | "
        f"{single['blocks']} | {single['txs_per_block']} | {single['refused']} |",
        f"| 3-node cluster | {cluster['mined_tx_per_s']} | {cluster['accepted_tx_per_s']} | "
        f"{cluster['blocks']} | {cluster['txs_per_block']} | {cluster['refused']} |",
        "",
        f"cluster / single = **{t['cluster_over_single']}** (target ≥ 0.4); follower lag "
        f"max **{lag['max']}** blocks, p50 {lag['p50']} over {lag['samples']} samples "
        "(target ≤ 3).", "",
        "## Model (benchmarks/bench_cluster_model.py)", "",
        "CPU milliseconds per mined transaction: single node "
        f"{ms['single_node']}, producer {ms['producer']}, busiest follower {ms['follower_max']}, "
        f"all etcd members {ms['etcd_all_members']} (busiest {ms['etcd_busiest_member']}), clients "
        f"{ms['clients_single']} / {ms['clients_cluster']}.", "",
        "| ratio cluster / single | value |", "|---|---|",
        f"| predicted here (rate = min(1 / busiest process, 2 cores / all processes): "
        f"{m['predicted_tx_per_s_this_machine']['single']} and "
        f"{m['predicted_tx_per_s_this_machine']['cluster']} tx/s) | "
        f"{m['predicted_ratio_this_machine']} |",
        f"| measured here | {m['measured_ratio_this_machine']} |",
        f"| predicted on three machines (the busiest process bounds it) | "
        f"{m['predicted_ratio_three_machines']} |", "",
        f"Cores busy (CPU seconds of every process per second): single {m['cores_busy']['single']}, "
        f"cluster {m['cores_busy']['cluster']}.", "",
        f"## Failover: kill -9 of the producer ({f['kills']} kills, lease TTL "
        f"{f['lease_ttl_seconds']} s)", "",
        "| | median s | max s | target |", "|---|---|---|---|",
        f"| new producer elected | {f['elected_seconds']['median']} | "
        f"{f['elected_seconds']['max']} | ≤ 3 |",
        f"| its first block committed | {f['first_block_seconds']['median']} | "
        f"{f['first_block_seconds']['max']} | ≤ 5 |", "",
        f"## Resync of {r['blocks']} blocks ({r['transactions']} transactions) by a new node", "",
        "| source | s from process start | s from listening | blocks/s |", "|---|---|---|---|",
        f"| etcd | {r['from_etcd']['seconds_from_process_start']} | "
        f"{r['from_etcd']['seconds_from_listening']} | {r['from_etcd']['blocks_per_second']} |",
        f"| a peer ({r['from_peer_then_etcd']['from_peer_blocks']} blocks), then etcd | "
        f"{r['from_peer_then_etcd']['seconds_from_process_start']} | "
        f"{r['from_peer_then_etcd']['seconds_from_listening']} | "
        f"{r['from_peer_then_etcd']['blocks_per_second']} |",
    ]
    return "\n".join(lines) + "\n"
