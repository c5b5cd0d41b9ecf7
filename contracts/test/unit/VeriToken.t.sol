// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {Test} from "forge-std/Test.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {VeriToken} from "../../src/VeriToken.sol";

contract VeriTokenTest is Test {
    VeriToken internal token;
    address internal owner = makeAddr("owner");
    address internal alice = makeAddr("alice");

    function setUp() public {
        token = new VeriToken(owner);
    }

    function test_constructor_setsMetadataAndOwner() public view {
        assertEq(token.name(), "VeriToken");
        assertEq(token.symbol(), "VERI");
        assertEq(token.decimals(), 18);
        assertEq(token.owner(), owner);
        assertEq(token.totalSupply(), 0);
    }

    function test_constructor_revertsWhenOwnerZero() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableInvalidOwner.selector, address(0)));
        new VeriToken(address(0));
    }

    function test_mint_ownerMints() public {
        vm.prank(owner);
        token.mint(alice, 42 ether);
        assertEq(token.balanceOf(alice), 42 ether);
        assertEq(token.totalSupply(), 42 ether);
    }

    function test_mint_revertsWhenNotOwner() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        token.mint(alice, 1);
    }
}
