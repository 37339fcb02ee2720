"""Facts wallets and tools ask about the node itself (net_*, eth_coinbase, eth_mining, ...)
and rpc_modules. A private chain's single producer: no peers, no proof of work."""
from eth_utils import to_checksum_address

from .base import MethodsBase
from .params import positional

PROTOCOL_VERSION = "0x44"  # eth/68, the wire protocol geth speaks
MODULE_VERSION = "1.0"


class NetMethods(MethodsBase):
    def rpc_net_listening(self, params):
        positional(params, 0, 0)
        return True

    def rpc_net_peerCount(self, params):
        positional(params, 0, 0)
        return "0x0"

    def rpc_eth_protocolVersion(self, params):
        positional(params, 0, 0)
        return PROTOCOL_VERSION

    def rpc_eth_coinbase(self, params):
        """The address this node's blocks pay their tips to (the genesis coinbase)."""
        positional(params, 0, 0)
        return to_checksum_address(self.chain.create_header_from_parent(self.head()).coinbase)

    def rpc_eth_mining(self, params):
        """This node seals blocks (automine or --block-time)."""
        positional(params, 0, 0)
        return True

    def rpc_eth_hashrate(self, params):
        positional(params, 0, 0)
        return "0x0"

    def rpc_eth_blobBaseFee(self, params):
        """The blob base fee a blob transaction sent now pays (the next block's)."""
        positional(params, 0, 0)
        child = self.chain.create_header_from_parent(self.head())
        return hex(self.chain.get_vm(child).state.blob_base_fee)

    def rpc_rpc_modules(self, params):
        positional(params, 0, 0)
        return {namespace: MODULE_VERSION for namespace in sorted({n.split("_")[0] for n in self.methods})}
