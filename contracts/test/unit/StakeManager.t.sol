// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {UnitBase} from "./UnitBase.sol";
import {StakeManager} from "../../src/StakeManager.sol";
import {IStakeManager} from "../../src/interfaces/IStakeManager.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// A token that keeps 1 % of every transfer (the kind the vault must refuse: it would book more than it holds).
contract FeeOnTransferToken is ERC20("Fee", "FEE") {
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function _update(address from, address to, uint256 value) internal override {
        if (from == address(0) || to == address(0)) return super._update(from, to, value);
        uint256 fee = value / 100;
        super._update(from, address(0xFEE), fee);
        super._update(from, to, value - fee);
    }
}

contract StakeManagerTest is UnitBase {
    bytes32 internal constant KEY = keccak256("key");
    address internal alice = makeAddr("alice");

    // ------------------------------------------------------------ deployment

    function test_constructor_revertsWhenTokenZero() public {
        vm.expectRevert(IStakeManager.ZeroAddress.selector);
        new StakeManager(IERC20(address(0)), 1 days, 1 ether);
    }

    function test_constructor_revertsWhenMinVerifierStakeZero() public {
        vm.expectRevert(IStakeManager.ZeroAmount.selector);
        new StakeManager(token, 1 days, 0);
    }

    function test_feeOnTransferToken_depositAndEscrowRevert_nothingBooked() public {
        FeeOnTransferToken fee = new FeeOnTransferToken();
        StakeManager vault = new StakeManager(IERC20(address(fee)), 1 days, 1 ether);
        vault.bind(address(this), address(game)); // this test plays the market for escrow
        fee.mint(alice, 1000 ether);
        vm.prank(alice);
        fee.approve(address(vault), type(uint256).max);

        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.TransferAmountMismatch.selector, 100 ether, 99 ether));
        vault.deposit(100 ether);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.TransferAmountMismatch.selector, 100 ether, 99 ether));
        vault.escrow(KEY, alice, 100 ether);

        assertEq(fee.balanceOf(address(vault)), 0);
        assertEq(fee.balanceOf(alice), 1000 ether);
        assertEq(vault.escrowOf(KEY), 0);
        IStakeManager.Position memory p = vault.positionOf(alice);
        assertEq(p.free + p.locked, 0);
    }

    function test_bind_revertsWhenNotDeployer() public {
        StakeManager fresh = new StakeManager(token, 1 days, 1 ether);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.NotDeployer.selector, alice));
        fresh.bind(address(market), address(game));
    }

    function test_bind_revertsWhenAlreadyBound() public {
        vm.expectRevert(IStakeManager.AlreadyBound.selector);
        stakes.bind(address(market), address(game));
    }

    function test_bind_revertsWhenZeroAddress() public {
        StakeManager fresh = new StakeManager(token, 1 days, 1 ether);
        vm.expectRevert(IStakeManager.ZeroAddress.selector);
        fresh.bind(address(0), address(game));
        vm.expectRevert(IStakeManager.ZeroAddress.selector);
        fresh.bind(address(market), address(0));
        fresh.bind(address(market), address(game));
        assertEq(fresh.market(), address(market));
        assertEq(fresh.game(), address(game));
    }

    // --------------------------------------------------------------- stakers

    function test_deposit_revertsWhenZeroAmount() public {
        vm.prank(alice);
        vm.expectRevert(IStakeManager.ZeroAmount.selector);
        stakes.deposit(0);
    }

    function test_deposit_pullsTokensIntoFreeStake() public {
        uint256 before = token.balanceOf(address(stakes));
        _stake(alice, 300 ether, false);
        assertEq(_pos(alice).free, 300 ether);
        assertEq(token.balanceOf(alice), 0);
        assertEq(token.balanceOf(address(stakes)), before + 300 ether);
        assertEq(stakes.drawWeightOf(alice), 0, "not a verifier");
    }

    function test_setVerifier_weightIsFreeStakeAboveMinimum() public {
        uint256 total = stakes.totalDrawWeight();
        assertEq(total, 1_000 ether + 5 * 500 ether);
        _stake(alice, 99 ether, true);
        assertEq(stakes.drawWeightOf(alice), 0, "below minVerifierStake");
        _stake(alice, 1 ether, true);
        assertEq(stakes.drawWeightOf(alice), 100 ether);
        assertEq(stakes.totalDrawWeight(), total + 100 ether);
        _leavePool(alice);
        assertEq(stakes.drawWeightOf(alice), 0);
        assertEq(stakes.totalDrawWeight(), total);
        assertFalse(_pos(alice).verifier);
    }

    function test_requestWithdrawal_revertsWhenZeroAmount() public {
        vm.prank(challenger);
        vm.expectRevert(IStakeManager.ZeroAmount.selector);
        stakes.requestWithdrawal(0);
    }

    function test_requestWithdrawal_revertsWhenAboveFreeStake() public {
        vm.prank(challenger);
        vm.expectRevert(
            abi.encodeWithSelector(
                IStakeManager.InsufficientFreeStake.selector, challenger, 1_000 ether + 1, 1_000 ether
            )
        );
        stakes.requestWithdrawal(1_000 ether + 1);
    }

    function test_withdraw_revertsWhenNothingToWithdraw() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.NothingToWithdraw.selector, uint64(0)));
        stakes.withdraw();
    }

    function test_withdraw_twoStepWithUnbondingDelay() public {
        address v = verifiers[0];
        vm.prank(v);
        stakes.requestWithdrawal(200 ether);
        uint64 releaseAt = uint64(block.timestamp) + stakes.unbondingDelay();
        IStakeManager.Position memory p = _pos(v);
        assertEq(p.free, 300 ether);
        assertEq(p.unbonding, 200 ether);
        assertEq(p.releaseAt, releaseAt);
        assertEq(stakes.drawWeightOf(v), 300 ether, "unbonding stake does not count for draws");

        vm.warp(releaseAt - 1);
        vm.prank(v);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.NothingToWithdraw.selector, releaseAt));
        stakes.withdraw();

        vm.warp(releaseAt);
        vm.prank(v);
        uint256 paid = stakes.withdraw();
        assertEq(paid, 200 ether);
        assertEq(token.balanceOf(v), 200 ether);
        assertEq(_pos(v).unbonding, 0);
        assertEq(_pos(v).free, 300 ether);

        vm.prank(v);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.NothingToWithdraw.selector, uint64(0)));
        stakes.withdraw();
    }

    function test_requestWithdrawal_secondRequestRestartsDelay() public {
        address v = verifiers[1];
        vm.prank(v);
        stakes.requestWithdrawal(100 ether);
        vm.warp(block.timestamp + 3 days);
        vm.prank(v);
        stakes.requestWithdrawal(50 ether);
        uint64 releaseAt = uint64(block.timestamp) + stakes.unbondingDelay();
        assertEq(_pos(v).unbonding, 150 ether);
        assertEq(_pos(v).releaseAt, releaseAt);
        vm.warp(releaseAt - 1);
        vm.prank(v);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.NothingToWithdraw.selector, releaseAt));
        stakes.withdraw();
        vm.warp(releaseAt);
        vm.prank(v);
        assertEq(stakes.withdraw(), 150 ether);
    }

    function test_withdraw_paysCreditsWhileStakeStillUnbonding() public {
        address v = verifiers[2];
        // an operator credits v (escrow release)
        _fund(address(this), 0);
        vm.prank(submitter);
        token.approve(address(stakes), type(uint256).max);
        vm.prank(address(market));
        stakes.escrow(KEY, submitter, 7 ether);
        vm.prank(address(market));
        stakes.releaseEscrow(KEY, v, 7 ether);
        vm.prank(v);
        stakes.requestWithdrawal(100 ether);

        vm.prank(v);
        assertEq(stakes.withdraw(), 7 ether, "credit only; stake still unbonding");
        assertEq(_pos(v).unbonding, 100 ether);
        assertEq(_pos(v).claimable, 0);
    }

    // ------------------------------------------------------------- operators

    function test_lock_revertsWhenNotOperator() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.NotOperator.selector, alice));
        stakes.lock(challenger, KEY, 1 ether);
    }

    function test_lock_revertsWhenZeroAmount() public {
        vm.prank(address(game));
        vm.expectRevert(IStakeManager.ZeroAmount.selector);
        stakes.lock(challenger, KEY, 0);
    }

    function test_lock_revertsWhenLockExists() public {
        vm.prank(address(game));
        stakes.lock(challenger, KEY, 1 ether);
        vm.prank(address(market));
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.LockExists.selector, challenger, KEY));
        stakes.lock(challenger, KEY, 1 ether);
    }

    function test_lock_revertsWhenInsufficientFreeStake() public {
        vm.prank(address(game));
        vm.expectRevert(
            abi.encodeWithSelector(IStakeManager.InsufficientFreeStake.selector, challenger, 1_001 ether, 1_000 ether)
        );
        stakes.lock(challenger, KEY, 1_001 ether);
    }

    /// @notice Locks move stake between free and locked; the draw weight (bonded = free + locked) stays, and a
    ///         slash lowers it. A member whose free stake cannot cover a seat's lock is stepped over by draws.
    function test_lock_unlock_moveFreeStake_weightIsBondedStake() public {
        vm.prank(address(game));
        stakes.lock(challenger, KEY, 950 ether);
        assertEq(stakes.lockedUnder(challenger, KEY), 950 ether);
        assertEq(_pos(challenger).locked, 950 ether);
        assertEq(_pos(challenger).free, 50 ether);
        assertEq(stakes.drawWeightOf(challenger), 1_000 ether, "locked stake still weighs");
        address[] memory exclude = new address[](0);
        address[] memory drawn = _drawSettled(keccak256("seat"), 6, exclude, 100 ether);
        for (uint256 i = 0; i < drawn.length; ++i) {
            assertTrue(drawn[i] != challenger, "50 free cannot lock 100: stepped over");
        }
        vm.prank(address(market));
        stakes.unlock(challenger, KEY);
        assertEq(_pos(challenger).free, 1_000 ether);
        assertEq(_pos(challenger).locked, 0);
        assertEq(stakes.drawWeightOf(challenger), 1_000 ether);
        vm.prank(address(game));
        stakes.lock(challenger, KEY, 950 ether);
        vm.prank(address(game));
        stakes.slash(challenger, KEY, 950 ether, new address[](0), new uint256[](0));
        assertEq(stakes.drawWeightOf(challenger), 0, "50 bonded is below minVerifierStake");
    }

    function test_unlock_revertsWhenNotOperator() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.NotOperator.selector, alice));
        stakes.unlock(challenger, KEY);
    }

    function test_unlock_revertsWhenNoLock() public {
        vm.prank(address(game));
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.NoLock.selector, challenger, KEY));
        stakes.unlock(challenger, KEY);
    }

    function test_slash_revertsWhenNotOperator() public {
        address[] memory to = new address[](0);
        uint256[] memory amounts = new uint256[](0);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.NotOperator.selector, alice));
        stakes.slash(challenger, KEY, 1 ether, to, amounts);
    }

    function test_slash_revertsWhenLengthMismatch() public {
        address[] memory to = new address[](2);
        uint256[] memory amounts = new uint256[](1);
        vm.prank(address(game));
        vm.expectRevert(IStakeManager.LengthMismatch.selector);
        stakes.slash(challenger, KEY, 1 ether, to, amounts);
    }

    function test_slash_revertsWhenSharesExceedSlash() public {
        vm.prank(address(game));
        stakes.lock(challenger, KEY, 10 ether);
        address[] memory to = new address[](2);
        uint256[] memory amounts = new uint256[](2);
        (to[0], to[1]) = (alice, verifiers[0]);
        (amounts[0], amounts[1]) = (6 ether, 5 ether);
        vm.prank(address(game));
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.SharesExceedSlash.selector, 11 ether, 10 ether));
        stakes.slash(challenger, KEY, 10 ether, to, amounts);
    }

    function test_slash_revertsWhenRecipientZero() public {
        vm.prank(address(game));
        stakes.lock(challenger, KEY, 10 ether);
        address[] memory to = new address[](1);
        uint256[] memory amounts = new uint256[](1);
        amounts[0] = 1 ether;
        vm.prank(address(game));
        vm.expectRevert(IStakeManager.ZeroAddress.selector);
        stakes.slash(challenger, KEY, 10 ether, to, amounts);
    }

    function test_slash_splitsSharesAndBurnsRest() public {
        vm.prank(address(game));
        stakes.lock(challenger, KEY, 50 ether);
        address[] memory to = new address[](3);
        uint256[] memory amounts = new uint256[](3);
        (to[0], to[1], to[2]) = (solver, verifiers[0], verifiers[1]);
        (amounts[0], amounts[1], amounts[2]) = (25 ether, 5 ether, 5 ether);
        uint256 supplyBefore = token.balanceOf(address(stakes));
        vm.expectEmit(address(stakes));
        emit IStakeManager.StakeSlashed(challenger, KEY, 40 ether, 5 ether);
        vm.prank(address(game));
        stakes.slash(challenger, KEY, 40 ether, to, amounts);
        assertEq(token.balanceOf(DEAD), 5 ether, "burned");
        assertEq(token.balanceOf(address(stakes)), supplyBefore - 5 ether);
        assertEq(_pos(solver).claimable, 25 ether);
        assertEq(_pos(verifiers[0]).claimable, 5 ether);
        assertEq(_pos(verifiers[1]).claimable, 5 ether);
        // the 10 ether left of the lock go back to free stake
        assertEq(stakes.lockedUnder(challenger, KEY), 0);
        assertEq(_pos(challenger).locked, 0);
        assertEq(_pos(challenger).free, 960 ether);
        assertEq(stakes.drawWeightOf(challenger), 960 ether);
    }

    /// @notice Only the lock is slashable: free and unbonding stake are out of reach (SlashExceedsLock).
    function test_slash_neverReachesFreeOrUnbondingStake() public {
        address v = verifiers[3];
        vm.prank(v);
        stakes.requestWithdrawal(450 ether); // free 50, unbonding 450
        vm.prank(address(game));
        stakes.lock(v, KEY, 20 ether); // free 30
        address[] memory to = new address[](0);
        uint256[] memory amounts = new uint256[](0);
        vm.prank(address(game));
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.SlashExceedsLock.selector, v, KEY, 100 ether, 20 ether));
        stakes.slash(v, KEY, 100 ether, to, amounts);
        vm.prank(address(game));
        stakes.slash(v, KEY, 20 ether, to, amounts);
        IStakeManager.Position memory p = _pos(v);
        assertEq(p.locked, 0);
        assertEq(p.free, 30 ether);
        assertEq(p.unbonding, 450 ether);
        assertEq(token.balanceOf(DEAD), 20 ether);
    }

    function test_escrow_revertsWhenNotMarket() public {
        vm.prank(address(game));
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.NotMarket.selector, address(game)));
        stakes.escrow(KEY, submitter, 1 ether);
    }

    function test_escrow_revertsWhenZeroAmount() public {
        vm.prank(address(market));
        vm.expectRevert(IStakeManager.ZeroAmount.selector);
        stakes.escrow(KEY, submitter, 0);
    }

    function test_escrow_revertsWhenEscrowExists() public {
        vm.prank(address(market));
        stakes.escrow(KEY, submitter, 1 ether);
        vm.prank(address(market));
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.EscrowExists.selector, KEY));
        stakes.escrow(KEY, submitter, 1 ether);
    }

    function test_releaseEscrow_revertsWhenNotMarket() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.NotMarket.selector, alice));
        stakes.releaseEscrow(KEY, alice, 1);
    }

    function test_releaseEscrow_revertsWhenAboveEscrow() public {
        vm.prank(address(market));
        stakes.escrow(KEY, submitter, 3 ether);
        vm.prank(address(market));
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.InsufficientEscrow.selector, KEY, 4 ether, 3 ether));
        stakes.releaseEscrow(KEY, alice, 4 ether);
    }

    function test_escrow_releaseCreditsAndWithdraws() public {
        vm.prank(address(market));
        stakes.escrow(KEY, submitter, 3 ether);
        assertEq(stakes.escrowOf(KEY), 3 ether);
        vm.prank(address(market));
        stakes.releaseEscrow(KEY, alice, 2 ether);
        assertEq(stakes.escrowOf(KEY), 1 ether);
        assertEq(_pos(alice).claimable, 2 ether);
        vm.prank(alice);
        assertEq(stakes.withdraw(), 2 ether);
        assertEq(token.balanceOf(alice), 2 ether);
    }

    // ------------------------------------------------------------------ draws

    /// @dev A draw by the weights as they stand now: mines a block, then reads the weights at the end of the last one.
    function _drawSettled(bytes32 seed, uint256 count, address[] memory exclude, uint256 minWeight)
        internal
        returns (address[] memory)
    {
        vm.roll(block.number + 1);
        return stakes.drawDistinct(seed, count, exclude, minWeight, block.number - 1);
    }

    function test_drawDistinct_currentBlockRefused() public {
        address[] memory exclude = new address[](0);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.DrawBlockNotPast.selector, block.number, block.number));
        stakes.drawDistinct(keccak256("s"), 1, exclude, 0, block.number);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.DrawBlockNotPast.selector, block.number, block.number));
        stakes.drawWeightAt(challenger, block.number);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.DrawBlockNotPast.selector, block.number + 5, block.number));
        stakes.totalDrawWeightAt(block.number + 5);
    }

    /// @notice Attack 2 at the StakeManager: once a draw's weights block is past, no deposit, withdrawal request or
    ///         (de)registration changes who that draw picks; only stepping a member over is possible, and only for a
    ///         member that no longer holds what it must lock.
    function test_drawDistinct_weightsOfPastBlockIgnoreLaterChanges() public {
        vm.roll(block.number + 1);
        uint256 asOf = block.number - 1;
        address[] memory exclude = new address[](0);
        address[][] memory before = new address[][](16);
        for (uint256 s = 0; s < 16; ++s) {
            before[s] = stakes.drawDistinct(keccak256(abi.encode(s)), 3, exclude, 0, asOf);
        }
        uint256 totalBefore = stakes.totalDrawWeightAt(asOf);
        // Everything a briber could do after seeing the seed, in the blocks that follow.
        address sybil = makeAddr("sybil");
        _stake(sybil, 1_000_000 ether, true); // a whale joins
        vm.prank(verifiers[1]);
        stakes.requestWithdrawal(1 ether); // a member shrinks (stays eligible)
        vm.prank(verifiers[2]);
        stakes.setVerifier(false); // a member leaves
        vm.prank(verifiers[2]);
        stakes.setVerifier(true); // and comes back
        vm.roll(block.number + 1);
        assertEq(stakes.totalDrawWeightAt(asOf), totalBefore, "the old block's total is unchanged");
        assertEq(stakes.drawWeightAt(sybil, asOf), 0, "the whale weighed nothing then");
        assertGt(stakes.totalDrawWeight(), totalBefore, "it does now");
        for (uint256 s = 0; s < 16; ++s) {
            address[] memory again = stakes.drawDistinct(keccak256(abi.encode(s)), 3, exclude, 0, asOf);
            assertEq(again.length, before[s].length);
            for (uint256 i = 0; i < again.length; ++i) {
                assertEq(again[i], before[s][i], "the same members, in the same order");
            }
        }
    }

    /// @notice A member drawn by its old weight that has since left (or no longer covers minWeight) is stepped over,
    ///         so the draw never seats someone who cannot lock; the other seats keep their candidates.
    function test_drawDistinct_memberWhoLeftSinceIsSteppedOver() public {
        vm.roll(block.number + 1);
        uint256 asOf = block.number - 1;
        address[] memory exclude = new address[](0);
        address[] memory before = stakes.drawDistinct(keccak256("leave"), 3, exclude, 0, asOf);
        vm.prank(before[0]);
        stakes.setVerifier(false);
        vm.roll(block.number + 1);
        address[] memory again = stakes.drawDistinct(keccak256("leave"), 3, exclude, 0, asOf);
        assertEq(again.length, 3);
        for (uint256 i = 0; i < again.length; ++i) {
            assertTrue(again[i] != before[0], "the leaver is not seated");
        }
        assertEq(again[0], before[1], "the next candidates move up");
        assertEq(again[1], before[2]);
    }

    function test_drawDistinct_excludesAndNeverRepeats() public {
        address[] memory exclude = new address[](2);
        (exclude[0], exclude[1]) = (challenger, verifiers[0]);
        for (uint256 s = 0; s < 32; ++s) {
            address[] memory drawn = _drawSettled(keccak256(abi.encode(s)), 4, exclude, 0);
            assertEq(drawn.length, 4, "every draw lands on an eligible verifier");
            for (uint256 i = 0; i < drawn.length; ++i) {
                assertFalse(_contains(exclude, drawn[i]));
                assertGt(stakes.drawWeightOf(drawn[i]), 0);
                for (uint256 j = 0; j < i; ++j) {
                    assertTrue(drawn[i] != drawn[j]);
                }
            }
        }
    }

    function test_drawDistinct_dominantExcludedWeightDoesNotStarveDraw() public {
        _stake(challenger, 1_000_000 ether, false); // the excluded account holds almost all the weight
        address[] memory exclude = new address[](1);
        exclude[0] = challenger;
        for (uint256 s = 0; s < 8; ++s) {
            address[] memory drawn = _drawSettled(keccak256(abi.encode(s)), 5, exclude, 0);
            assertEq(drawn.length, 5, "all five other verifiers");
            for (uint256 i = 0; i < drawn.length; ++i) {
                assertTrue(drawn[i] != challenger);
            }
        }
        // and asking for more than exist returns exactly the eligible ones
        assertEq(_drawSettled(keccak256("more"), 9, exclude, 0).length, 5);
    }

    function test_drawDistinct_returnsFewerWhenPoolSmall() public {
        for (uint256 i = 0; i < verifiers.length; ++i) {
            _leavePool(verifiers[i]);
        }
        address[] memory exclude = new address[](0);
        address[] memory drawn = _drawSettled(keccak256("s"), 3, exclude, 0);
        assertEq(drawn.length, 1);
        assertEq(drawn[0], challenger);
        _leavePool(challenger);
        assertEq(_drawSettled(keccak256("s"), 3, exclude, 0).length, 0);
    }

    /// @notice Members whose weight is below `minWeight` (they could not lock it) are stepped over, never drawn.
    function test_drawDistinct_skipsMembersBelowMinWeight() public {
        address[] memory exclude = new address[](0);
        uint256 heavy = stakes.positionOf(challenger).free; // the challenger holds more than any verifier
        for (uint256 s = 0; s < 16; ++s) {
            address[] memory drawn = _drawSettled(keccak256(abi.encode(s)), 3, exclude, heavy);
            assertEq(drawn.length, 1, "only one member can cover minWeight");
            assertEq(drawn[0], challenger);
        }
    }

    function test_conservation_balanceEqualsPositionsAndEscrow() public {
        vm.prank(address(market));
        stakes.escrow(KEY, submitter, 9 ether);
        vm.prank(verifiers[0]);
        stakes.requestWithdrawal(10 ether);
        vm.prank(address(game));
        stakes.lock(challenger, KEY, 30 ether);
        uint256 sum = stakes.escrowOf(KEY);
        address[7] memory all =
            [solver, challenger, verifiers[0], verifiers[1], verifiers[2], verifiers[3], verifiers[4]];
        for (uint256 i = 0; i < all.length; ++i) {
            IStakeManager.Position memory p = _pos(all[i]);
            sum += p.free + p.locked + p.unbonding + p.claimable;
        }
        assertEq(token.balanceOf(address(stakes)), sum);
    }
}
