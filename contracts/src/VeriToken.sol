// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title VeriToken
/// @notice The devnet payment and staking token (18 decimals). The owner mints; in production any ERC-20 can be used
///         instead, since the protocol only needs `transfer`/`transferFrom`.
contract VeriToken is ERC20, Ownable {
    constructor(address owner_) ERC20("VeriToken", "VERI") Ownable(owner_) {}

    /// @notice Devnet faucet: the owner mints `amount` to `to`.
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }
}
