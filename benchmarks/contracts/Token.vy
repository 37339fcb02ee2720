# pragma version ~=0.4.3
"""
@title Token
@notice A minimal ERC-20-like token for the benchmark mix (transfer + balanceOf only).
@dev benchmarks/ only. Predeployed in genesis on both chains (runtime code + balances) and
     also deployed by transactions (constructor mints the supply to the deployer).
"""

event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256

balanceOf: public(HashMap[address, uint256])
totalSupply: public(uint256)


@deploy
def __init__(supply: uint256):
    self.balanceOf[msg.sender] = supply
    self.totalSupply = supply


@external
def transfer(to: address, amount: uint256) -> bool:
    self.balanceOf[msg.sender] -= amount
    self.balanceOf[to] += amount
    log Transfer(sender=msg.sender, receiver=to, value=amount)
    return True
