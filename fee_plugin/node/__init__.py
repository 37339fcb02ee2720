"""Everything that runs a node: pool, builder, storage, cluster, RPC."""
