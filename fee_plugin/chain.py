"""build_chain: a py-evm MiningChain for a genesis, new or reopened from a database."""
from typing import Optional, Type

from eth.abc import AtomicDatabaseAPI, BlockHeaderAPI
from eth.chains.base import MiningChain
from eth.db.atomic import AtomicDB
from eth.db.chain import ChainDB
from eth.exceptions import CanonicalHeadNotFound, HeaderNotFound
from eth_utils import encode_hex

from .genesis import Genesis
from .vm import fee_vm_class


class GenesisMismatchError(Exception):
    """The database holds a chain that was not built from this genesis."""


def fee_chain_class(genesis: Genesis, write_back: bool = False) -> Type[MiningChain]:
    return MiningChain.configure(
        __name__=f"FeePluginChain{genesis.chain_id}",
        vm_configuration=((0, fee_vm_class(genesis, write_back=write_back)),),
        chain_id=genesis.chain_id,
    )


def genesis_header(genesis: Genesis) -> BlockHeaderAPI:
    """The genesis header this genesis produces (built in a scratch database)."""
    return fee_chain_class(genesis).from_genesis(
        AtomicDB(), genesis.genesis_params(), genesis.genesis_state()
    ).get_canonical_block_header_by_number(0)


def build_chain(
    genesis: Genesis, db: Optional[AtomicDatabaseAPI] = None, write_back: bool = False
) -> MiningChain:
    """A fee-plugin MiningChain: a new one, or the one `db` already holds for this genesis.

    `write_back` selects the per-block write-back cache (same blocks, less work per
    transaction when blocks are built or imported whole).

    The next header is stamped head.timestamp + 1 (never the wall clock); producers set
    real timestamps with `chain.set_header_timestamp` before applying transactions.
    """
    chain_class = fee_chain_class(genesis, write_back)
    db = AtomicDB() if db is None else db
    try:
        ChainDB(db).get_canonical_head()
    except CanonicalHeadNotFound:
        return chain_class.from_genesis(db, genesis.genesis_params(), genesis.genesis_state())

    expected = genesis_header(genesis)
    try:
        stored = ChainDB(db).get_canonical_block_header_by_number(0)
    except HeaderNotFound:
        stored = None
    if stored is None or stored.hash != expected.hash:
        found = encode_hex(stored.hash) if stored is not None else "no genesis block"
        raise GenesisMismatchError(
            f"the database holds another chain: its genesis is {found}, this genesis "
            f"file produces {encode_hex(expected.hash)} (chain id {genesis.chain_id})"
        )
    return chain_class(db)
