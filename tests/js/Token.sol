// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// An OpenZeppelin ERC-20 as a dapp developer would deploy it, plus two functions that
/// fail the ways calls fail: a require with a reason string and a panic.
contract Token is ERC20 {
    constructor(uint256 supply) ERC20("Fee Test Token", "FTT") {
        _mint(msg.sender, supply);
    }

    function mustBePositive(uint256 x) external pure returns (uint256) {
        require(x > 0, "x must be positive");
        return x;
    }

    function divide(uint256 a, uint256 b) external pure returns (uint256) {
        return a / b;
    }
}
