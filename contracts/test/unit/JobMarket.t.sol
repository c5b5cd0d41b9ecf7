// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {UnitBase} from "./UnitBase.sol";
import {JobMarket} from "../../src/JobMarket.sol";
import {IJobMarket} from "../../src/interfaces/IJobMarket.sol";
import {IStakeManager} from "../../src/interfaces/IStakeManager.sol";
import {RFC9162} from "../../src/libraries/RFC9162.sol";
import {BlockHeader} from "../../src/libraries/BlockHeader.sol";
import {Headers} from "../utils/Headers.sol";

contract JobMarketTest is UnitBase {
    address internal alice = makeAddr("alice");

    // ------------------------------------------------------------ deployment

    function test_constructor_revertsWhenStakeManagerZero() public {
        vm.expectRevert(IJobMarket.ZeroAddress.selector);
        new JobMarket(IStakeManager(address(0)), mp);
    }

    function test_constructor_revertsWhenParamsInvalid() public {
        IJobMarket.Params[] memory bad = new IJobMarket.Params[](10);
        for (uint256 i = 0; i < bad.length; ++i) {
            bad[i] = mp;
        }
        bad[0].stakeMultiplierBps = 9_999; // stake below price would make cheating pay
        bad[1].auditWindow = 0;
        bad[2].auditRateBps = 0;
        bad[3].auditRateBps = 10_001;
        bad[4].maxSampledSegments = 0;
        bad[5].auditFeeBps = 10_001;
        bad[6].expirySlashBps = 10_001;
        bad[7].slashWinnerBps = 8_001; // + 2000 arbiter share > 100 %
        bad[8].maxLeaves = 0;
        bad[9].slashArbiterBps = 5_001;
        for (uint256 i = 0; i < bad.length; ++i) {
            vm.expectRevert(IJobMarket.InvalidParams.selector);
            new JobMarket(stakes, bad[i]);
        }
        new JobMarket(stakes, mp); // the defaults are valid
    }

    function test_bindGame_revertsWhenNotDeployer() public {
        JobMarket fresh = new JobMarket(stakes, mp);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotDeployer.selector, alice));
        fresh.bindGame(address(game));
    }

    function test_bindGame_revertsWhenAlreadyBound() public {
        vm.expectRevert(IJobMarket.AlreadyBound.selector);
        market.bindGame(address(game));
    }

    function test_bindGame_revertsWhenZeroAddress() public {
        JobMarket fresh = new JobMarket(stakes, mp);
        vm.expectRevert(IJobMarket.ZeroAddress.selector);
        fresh.bindGame(address(0));
    }

    function test_beginDispute_revertsWhenNotGame() public {
        (bytes32 jobId,) = _committedJob(4, NO_LIE);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotGame.selector, alice));
        market.beginDispute(jobId, 1);
    }

    function test_settleDispute_revertsWhenNotGame() public {
        (bytes32 jobId,) = _committedJob(4, NO_LIE);
        address[] memory arbiters = new address[](0);
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotGame.selector, challenger));
        market.settleDispute(jobId, true, challenger, arbiters);
    }

    function test_settleDispute_revertsWhenJobNotDisputed() public {
        (bytes32 jobId,) = _committedJob(4, NO_LIE);
        address[] memory arbiters = new address[](0);
        vm.prank(address(game));
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.WrongJobState.selector, jobId, IJobMarket.JobState.Committed));
        market.settleDispute(jobId, true, challenger, arbiters);
    }

    // ---------------------------------------------------------------- nonces

    function test_cancelNonce_marksOnlyThatNonceUsed() public {
        uint256[4] memory nonces = [uint256(0), 255, 256, type(uint256).max];
        for (uint256 i = 0; i < nonces.length; ++i) {
            vm.expectEmit(address(market));
            emit IJobMarket.NonceCancelled(alice, nonces[i]);
            vm.prank(alice);
            market.cancelNonce(nonces[i]);
            for (uint256 j = 0; j < nonces.length; ++j) {
                assertEq(market.nonceUsed(alice, nonces[j]), j <= i);
            }
        }
        assertFalse(market.nonceUsed(alice, 1));
        assertFalse(market.nonceUsed(alice, 257));
        assertFalse(market.nonceUsed(challenger, 0), "nonces are per signer");
    }

    function test_cancelNonce_revertsWhenNonceUsed() public {
        vm.prank(alice);
        market.cancelNonce(7);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NonceUsed.selector, alice, 7));
        market.cancelNonce(7);
    }

    function test_acceptBid_revertsWhenOrderNonceCancelled() public {
        (IJobMarket.JobOrder memory o, bytes memory oSig, IJobMarket.Bid memory b, bytes memory bSig) = _signedPair(4);
        vm.prank(submitter);
        market.cancelNonce(o.nonce);
        vm.prank(submitter);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NonceUsed.selector, submitter, o.nonce));
        market.acceptBid(o, oSig, b, bSig);
    }

    function test_acceptBid_revertsWhenBidNonceCancelled() public {
        (IJobMarket.JobOrder memory o, bytes memory oSig, IJobMarket.Bid memory b, bytes memory bSig) = _signedPair(4);
        vm.prank(solver);
        market.cancelNonce(b.nonce);
        vm.prank(submitter);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NonceUsed.selector, solver, b.nonce));
        market.acceptBid(o, oSig, b, bSig);
    }

    function test_acceptBid_revertsWhenBidNonceReusedOnAnotherOrder() public {
        (IJobMarket.JobOrder memory o, bytes memory oSig, IJobMarket.Bid memory b, bytes memory bSig) = _signedPair(4);
        _accept(o, oSig, b, bSig);
        IJobMarket.JobOrder memory o2 = _order(8, 1);
        IJobMarket.Bid memory b2 = b;
        b2.orderHash = market.hashOrder(o2);
        (bytes memory oSig2, bytes memory bSig2) = _resign(o2, b2);
        vm.prank(submitter);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NonceUsed.selector, solver, b.nonce));
        market.acceptBid(o2, oSig2, b2, bSig2);
    }

    // ------------------------------------------------------------- acceptBid

    function test_acceptBid_escrowsPriceAndLocksStake() public {
        (IJobMarket.JobOrder memory o, bytes memory oSig, IJobMarket.Bid memory b, bytes memory bSig) = _signedPair(16);
        bytes32 expectedId = market.hashOrder(o);
        uint256 submitterBalance = token.balanceOf(submitter);
        _expectMatched(o, expectedId);
        bytes32 jobId = _accept(o, oSig, b, bSig);
        assertEq(jobId, expectedId, "job id is the order digest");
        IJobMarket.Job memory job = market.getJob(jobId);
        assertEq(uint8(job.state), uint8(IJobMarket.JobState.Matched));
        assertEq(job.submitter, submitter);
        assertEq(job.solver, solver);
        assertEq(job.numLeaves, 16);
        assertEq(job.price, PRICE);
        assertEq(job.stake, 2 * PRICE);
        assertEq(job.deadline, o.deadline);
        assertEq(job.initStateRoot, INIT_ROOT);
        assertEq(stakes.escrowOf(jobId), PRICE);
        assertEq(token.balanceOf(submitter), submitterBalance - PRICE);
        assertEq(stakes.lockedUnder(solver, jobId), 2 * PRICE);
        assertEq(_pos(solver).free, 1_000 ether - 2 * PRICE);
        assertTrue(market.nonceUsed(submitter, o.nonce));
        assertTrue(market.nonceUsed(solver, b.nonce));
    }

    function _expectMatched(IJobMarket.JobOrder memory o, bytes32 expectedId) internal {
        vm.expectEmit(address(market));
        emit IJobMarket.JobMatched(
            expectedId,
            submitter,
            solver,
            o.specHash,
            o.datasetHash,
            INIT_ROOT,
            o.totalSteps,
            o.checkpointInterval,
            PRICE,
            2 * PRICE,
            o.deadline
        );
    }

    function test_requiredStake_isMaxOfFloorAndMultiple() public view {
        assertEq(market.requiredStake(0), mp.minJobStake);
        assertEq(market.requiredStake(10 ether), mp.minJobStake);
        assertEq(market.requiredStake(PRICE), 2 * PRICE);
    }

    function test_acceptBid_revertsWhenNotSubmitter() public {
        (IJobMarket.JobOrder memory o, bytes memory oSig, IJobMarket.Bid memory b, bytes memory bSig) = _signedPair(4);
        vm.prank(solver);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotSubmitter.selector, solver, submitter));
        market.acceptBid(o, oSig, b, bSig);
    }

    function test_acceptBid_revertsWhenOrderExpired() public {
        (IJobMarket.JobOrder memory o, bytes memory oSig, IJobMarket.Bid memory b, bytes memory bSig) = _signedPair(4);
        b.expiry = o.deadline + 1;
        (, bSig) = _resign(o, b);
        vm.warp(o.deadline);
        vm.prank(submitter);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.OrderExpired.selector, o.deadline));
        market.acceptBid(o, oSig, b, bSig);
    }

    function test_acceptBid_revertsWhenBidExpired() public {
        (IJobMarket.JobOrder memory o, bytes memory oSig, IJobMarket.Bid memory b, bytes memory bSig) = _signedPair(4);
        vm.warp(b.expiry);
        vm.prank(submitter);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.BidExpired.selector, b.expiry));
        market.acceptBid(o, oSig, b, bSig);
    }

    function test_acceptBid_revertsWhenScheduleInvalid() public {
        uint64[2][4] memory schedules = [
            [uint64(64), 0], // zero interval
            [uint64(0), 4], // zero steps
            [uint64(10), 4], // not a multiple
            [uint64(mp.maxLeaves) + 1, 1] // more than maxLeaves leaves
        ];
        for (uint256 i = 0; i < schedules.length; ++i) {
            IJobMarket.JobOrder memory o = _order(schedules[i][0], schedules[i][1]);
            IJobMarket.Bid memory b = _bid(bytes32(0), PRICE);
            bytes memory oSig = _sign(SUBMITTER_KEY, keccak256("unused"));
            vm.prank(submitter);
            vm.expectRevert(
                abi.encodeWithSelector(IJobMarket.InvalidSchedule.selector, schedules[i][0], schedules[i][1])
            );
            market.acceptBid(o, oSig, b, oSig);
        }
        // exactly maxLeaves leaves is fine (terms-wise): the next check (bid order hash) is what fails
        IJobMarket.JobOrder memory ok = _order(uint64(mp.maxLeaves), 1);
        IJobMarket.Bid memory b2 = _bid(bytes32(0), PRICE);
        bytes32 h = market.hashOrder(ok);
        vm.prank(submitter);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.BidForOtherOrder.selector, bytes32(0), h));
        market.acceptBid(ok, "", b2, "");
    }

    function test_acceptBid_revertsWhenBidForOtherOrder() public {
        (IJobMarket.JobOrder memory o, bytes memory oSig, IJobMarket.Bid memory b,) = _signedPair(4);
        IJobMarket.JobOrder memory other = _order(8, 1);
        bytes32 otherHash = market.hashOrder(other);
        b.orderHash = otherHash;
        bytes32 h = market.hashOrder(o);
        (, bytes memory bSig) = _resign(o, b);
        vm.prank(submitter);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.BidForOtherOrder.selector, otherHash, h));
        market.acceptBid(o, oSig, b, bSig);
    }

    function test_acceptBid_revertsWhenPriceAboveMax() public {
        (IJobMarket.JobOrder memory o, bytes memory oSig, IJobMarket.Bid memory b,) = _signedPair(4);
        b.price = PRICE + 1;
        b.stake = market.requiredStake(b.price);
        (, bytes memory bSig) = _resign(o, b);
        vm.prank(submitter);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.PriceAboveMax.selector, PRICE + 1, PRICE));
        market.acceptBid(o, oSig, b, bSig);
    }

    function test_acceptBid_revertsWhenStakeTooLow() public {
        (IJobMarket.JobOrder memory o, bytes memory oSig, IJobMarket.Bid memory b,) = _signedPair(4);
        b.stake = 2 * PRICE - 1;
        (, bytes memory bSig) = _resign(o, b);
        vm.prank(submitter);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.StakeTooLow.selector, 2 * PRICE - 1, 2 * PRICE));
        market.acceptBid(o, oSig, b, bSig);
    }

    function test_acceptBid_revertsWhenStakeAboveUint128() public {
        (IJobMarket.JobOrder memory o, bytes memory oSig, IJobMarket.Bid memory b,) = _signedPair(4);
        b.stake = uint256(type(uint128).max) + 1;
        (, bytes memory bSig) = _resign(o, b);
        vm.prank(submitter);
        vm.expectRevert(IJobMarket.InvalidParams.selector);
        market.acceptBid(o, oSig, b, bSig);
    }

    function test_acceptBid_revertsWhenJobExists() public {
        (IJobMarket.JobOrder memory o, bytes memory oSig, IJobMarket.Bid memory b, bytes memory bSig) = _signedPair(4);
        bytes32 jobId = _accept(o, oSig, b, bSig);
        IJobMarket.Bid memory b2 = _bid(jobId, PRICE / 2);
        bytes memory bSig2 = _sign(SOLVER_KEY, market.hashBid(b2));
        vm.prank(submitter);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobExists.selector, jobId));
        market.acceptBid(o, oSig, b2, bSig2);
    }

    function test_acceptBid_revertsWhenOrderSignatureInvalid() public {
        (IJobMarket.JobOrder memory o,, IJobMarket.Bid memory b, bytes memory bSig) = _signedPair(4);
        bytes memory wrong = _sign(SOLVER_KEY, market.hashOrder(o)); // signed by someone else
        vm.prank(submitter);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InvalidSignature.selector, submitter));
        market.acceptBid(o, wrong, b, bSig);
    }

    function test_acceptBid_revertsWhenBidSignatureInvalid() public {
        (IJobMarket.JobOrder memory o, bytes memory oSig, IJobMarket.Bid memory b,) = _signedPair(4);
        bytes memory wrong = _sign(SUBMITTER_KEY, market.hashBid(b));
        vm.prank(submitter);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InvalidSignature.selector, solver));
        market.acceptBid(o, oSig, b, wrong);
    }

    function test_acceptBid_revertsWhenSolverStakeInsufficient() public {
        (IJobMarket.JobOrder memory o, bytes memory oSig, IJobMarket.Bid memory b,) = _signedPair(4);
        b.stake = 1_000 ether + 1;
        (, bytes memory bSig) = _resign(o, b);
        vm.prank(submitter);
        vm.expectRevert(
            abi.encodeWithSelector(IStakeManager.InsufficientFreeStake.selector, solver, 1_000 ether + 1, 1_000 ether)
        );
        market.acceptBid(o, oSig, b, bSig);
    }

    function test_acceptBid_rejectsSignaturesFromAnotherChain() public {
        (IJobMarket.JobOrder memory o, bytes memory oSig, IJobMarket.Bid memory b, bytes memory bSig) = _signedPair(4);
        vm.chainId(1);
        bytes32 h = market.hashOrder(o);
        assertTrue(h != b.orderHash, "chain id is part of the domain");
        vm.prank(submitter);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.BidForOtherOrder.selector, b.orderHash, h));
        market.acceptBid(o, oSig, b, bSig);
        // even with the bid re-bound to the new digest, the order signature from chain 31337 is refused
        b.orderHash = h;
        bytes memory bSig2 = _sign(SOLVER_KEY, market.hashBid(b));
        vm.prank(submitter);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InvalidSignature.selector, submitter));
        market.acceptBid(o, oSig, b, bSig2);
    }

    // ---------------------------------------------------------------- commit

    function test_commit_recordsTrajectoryAndSeedBlock() public {
        bytes32 jobId = _match(16, 1);
        bytes32[] memory leaves = _toyLeaves(INIT_ROOT, 16, NO_LIE);
        bytes32 root = _root(leaves, 0, 16);
        bytes32[] memory proof = _path(leaves, 15, 0, 16);
        uint64 auditEnd = uint64(block.timestamp) + mp.auditWindow;
        vm.expectEmit(address(market));
        emit IJobMarket.JobCommitted(jobId, root, 16, leaves[15], "uri", auditEnd, uint64(block.number) + 1);
        vm.prank(solver);
        market.commit(jobId, root, 16, leaves[15], proof, "uri");
        IJobMarket.Job memory job = market.getJob(jobId);
        assertEq(uint8(job.state), uint8(IJobMarket.JobState.Committed));
        assertEq(job.trajectoryRoot, root);
        assertEq(job.finalStateRoot, leaves[15]);
        assertEq(job.committedAt, block.timestamp);
        assertEq(job.auditEnd, auditEnd);
        assertEq(job.seedBlock, block.number + 1);
        assertEq(job.seed, bytes32(0));
    }

    function test_commit_revertsWhenUnknownJob() public {
        bytes32[] memory proof = new bytes32[](0);
        vm.prank(solver);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.UnknownJob.selector, bytes32(uint256(1))));
        market.commit(bytes32(uint256(1)), bytes32(uint256(2)), 1, bytes32(uint256(3)), proof, "");
    }

    function test_commit_revertsWhenAlreadyCommitted() public {
        (bytes32 jobId, bytes32[] memory leaves) = _committedJob(4, NO_LIE);
        bytes32 root = _root(leaves, 0, 4);
        bytes32[] memory proof = _path(leaves, 3, 0, 4);
        vm.prank(solver);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.WrongJobState.selector, jobId, IJobMarket.JobState.Committed));
        market.commit(jobId, root, 4, leaves[3], proof, "");
    }

    function test_commit_revertsWhenNotSolver() public {
        bytes32 jobId = _match(4, 1);
        bytes32[] memory leaves = _toyLeaves(INIT_ROOT, 4, NO_LIE);
        bytes32 root = _root(leaves, 0, 4);
        bytes32[] memory proof = _path(leaves, 3, 0, 4);
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotSolver.selector, challenger, solver));
        market.commit(jobId, root, 4, leaves[3], proof, "");
    }

    function test_commit_revertsWhenDeadlinePassed() public {
        bytes32 jobId = _match(4, 1);
        bytes32[] memory leaves = _toyLeaves(INIT_ROOT, 4, NO_LIE);
        bytes32 root = _root(leaves, 0, 4);
        bytes32[] memory proof = _path(leaves, 3, 0, 4);
        uint64 deadline = market.getJob(jobId).deadline;
        vm.warp(deadline);
        vm.prank(solver);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.DeadlinePassed.selector, deadline));
        market.commit(jobId, root, 4, leaves[3], proof, "");
    }

    function test_commit_revertsWhenWrongLeafCount() public {
        bytes32 jobId = _match(4, 1);
        bytes32[] memory leaves = _toyLeaves(INIT_ROOT, 5, NO_LIE);
        bytes32 root = _root(leaves, 0, 5);
        bytes32[] memory proof = _path(leaves, 4, 0, 5);
        vm.prank(solver);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.WrongLeafCount.selector, uint64(5), uint64(4)));
        market.commit(jobId, root, 5, leaves[4], proof, "");
    }

    function test_commit_revertsWhenZeroRoot() public {
        bytes32 jobId = _match(4, 1);
        bytes32[] memory leaves = _toyLeaves(INIT_ROOT, 4, NO_LIE);
        bytes32 root = _root(leaves, 0, 4);
        bytes32[] memory proof = _path(leaves, 3, 0, 4);
        vm.prank(solver);
        vm.expectRevert(IJobMarket.ZeroRoot.selector);
        market.commit(jobId, bytes32(0), 4, leaves[3], proof, "");
        vm.prank(solver);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.ReservedRoot.selector, bytes32(0)));
        market.commit(jobId, root, 4, bytes32(0), proof, "");
    }

    function test_commit_revertsWhenFinalStateNotLastLeaf() public {
        bytes32 jobId = _match(4, 1);
        bytes32[] memory leaves = _toyLeaves(INIT_ROOT, 4, NO_LIE);
        bytes32 root = _root(leaves, 0, 4);
        bytes32[] memory proof2 = _path(leaves, 2, 0, 4);
        bytes32[] memory proof3 = _path(leaves, 3, 0, 4);
        // leaf 2 with its own (valid) path is still not leaf N-1
        vm.prank(solver);
        vm.expectRevert(IJobMarket.FinalStateNotLastLeaf.selector);
        market.commit(jobId, root, 4, leaves[2], proof2, "");
        // the right leaf with a wrong path
        vm.prank(solver);
        vm.expectRevert(IJobMarket.FinalStateNotLastLeaf.selector);
        market.commit(jobId, root, 4, leaves[3], proof2, "");
        // a final state that is not in the tree
        vm.prank(solver);
        vm.expectRevert(IJobMarket.FinalStateNotLastLeaf.selector);
        market.commit(jobId, root, 4, keccak256("other model"), proof3, "");
    }

    // ----------------------------------------------------------------- audit

    function test_drawAudit_revertsWhenUnknownJob() public {
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.UnknownJob.selector, bytes32(uint256(5))));
        market.drawAudit(bytes32(uint256(5)), "");
    }

    function test_drawAudit_revertsWhenNotCommitted() public {
        bytes32 jobId = _match(4, 1);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.WrongJobState.selector, jobId, IJobMarket.JobState.Matched));
        market.drawAudit(jobId, "");
    }

    function test_drawAudit_revertsWhenSeedNotReady() public {
        (bytes32 jobId,) = _committedJob(4, NO_LIE);
        uint64 seedBlock = market.getJob(jobId).seedBlock;
        assertEq(seedBlock, block.number + 1);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.SeedNotReady.selector, seedBlock));
        market.drawAudit(jobId, "");
        vm.roll(seedBlock); // the seed block itself is being mined: its hash is not known yet
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.SeedNotReady.selector, seedBlock));
        market.drawAudit(jobId, "");
    }

    function test_drawAudit_revertsWhenSeedAlreadyDrawn() public {
        (bytes32 jobId,) = _committedJob(4, NO_LIE);
        _drawAudit(jobId);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.SeedAlreadyDrawn.selector, jobId));
        market.drawAudit(jobId, "");
    }

    function test_drawAudit_derivesSeedFromSeedBlockRandao() public {
        (bytes32 jobId, bytes32[] memory leaves) = _committedJob(16, NO_LIE);
        IJobMarket.Job memory job = market.getJob(jobId);
        vm.roll(job.seedBlock + 1);
        bytes32 randao = _randao(job.seedBlock);
        bytes memory header = _header(job.seedBlock);
        bytes32 expectedSeed = keccak256(abi.encode(randao, jobId, _root(leaves, 0, 16)));
        market.drawAudit(jobId, header);
        assertEq(market.getJob(jobId).seed, expectedSeed);
        address[] memory assigned = market.assignedVerifiers(jobId);
        assertEq(assigned.length, mp.verifiersPerJob);
        for (uint256 i = 0; i < assigned.length; ++i) {
            assertTrue(assigned[i] != solver && assigned[i] != submitter);
            assertGt(stakes.drawWeightOf(assigned[i]), 0);
        }
    }

    /// @notice Attack 8: the seed is the seed block's RANDAO value, and only that block's own header (the one that
    ///         hashes to its block hash) is accepted: no other header, no other block's, no truncated one.
    function test_drawAudit_acceptsOnlyTheSeedBlocksOwnHeader() public {
        (bytes32 jobId,) = _committedJob(4, NO_LIE);
        uint64 seedBlock = market.getJob(jobId).seedBlock;
        vm.roll(seedBlock + 2);
        bytes memory own = _header(seedBlock);
        bytes memory other = _header(seedBlock + 1); // a real header, of the next block
        bytes memory forged = Headers.encode(seedBlock, keccak256("a RANDAO value the caller likes"));
        bytes memory cut = new bytes(own.length - 1);
        for (uint256 i = 0; i < cut.length; ++i) {
            cut[i] = own[i];
        }
        bytes[3] memory wrong = [other, forged, cut];
        for (uint256 i = 0; i < wrong.length; ++i) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    BlockHeader.HeaderMismatch.selector, seedBlock, keccak256(own), keccak256(wrong[i])
                )
            );
            market.drawAudit(jobId, wrong[i]);
        }
        market.drawAudit(jobId, own);
        assertTrue(market.getJob(jobId).seed != bytes32(0));
    }

    function test_drawAudit_rearmsSeedWhenBlockhashUnavailable() public {
        (bytes32 jobId,) = _committedJob(4, NO_LIE);
        uint64 seedBlock = market.getJob(jobId).seedBlock;
        // 256 blocks later the hash is still readable (forge returns a pseudo hash for unset recent blocks)
        vm.roll(seedBlock + 256);
        assertTrue(blockhash(seedBlock) != bytes32(0));
        vm.roll(seedBlock + 257);
        assertEq(blockhash(seedBlock), bytes32(0));
        uint64 rearmed = uint64(block.number) + 1;
        vm.expectEmit(address(market));
        emit IJobMarket.AuditSeedRearmed(jobId, rearmed);
        market.drawAudit(jobId, _auditHeader(jobId));
        IJobMarket.Job memory job = market.getJob(jobId);
        assertEq(job.seedBlock, rearmed);
        assertEq(job.seed, bytes32(0));
        assertEq(market.assignedVerifiers(jobId).length, 0);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.SeedNotReady.selector, rearmed));
        market.drawAudit(jobId, "");
        _drawAudit(jobId);
        assertTrue(market.getJob(jobId).seed != bytes32(0));
    }

    function test_drawAudit_excludesSolverAndSubmitter() public {
        // Solver and submitter become registered verifiers with large weights; only two other verifiers stay.
        _stake(solver, 1_000 ether, false);
        vm.prank(solver);
        stakes.setVerifier(true);
        vm.startPrank(submitter);
        stakes.deposit(500 ether);
        stakes.setVerifier(true);
        vm.stopPrank();
        _leavePool(challenger);
        _leavePool(verifiers[2]);
        _leavePool(verifiers[3]);
        _leavePool(verifiers[4]);
        for (uint256 j = 0; j < 4; ++j) {
            (bytes32 jobId,) = _committedJob(4, NO_LIE);
            _drawAudit(jobId);
            address[] memory assigned = market.assignedVerifiers(jobId);
            assertEq(assigned.length, 2, "exactly the two eligible verifiers");
            for (uint256 i = 0; i < assigned.length; ++i) {
                assertTrue(assigned[i] != solver, "solver audits itself");
                assertTrue(assigned[i] != submitter, "submitter audits its own job");
            }
            assertTrue(_contains(assigned, verifiers[0]) && _contains(assigned, verifiers[1]));
        }
    }

    function test_sampledSegments_revertsWhenSeedNotDrawn() public {
        (bytes32 jobId,) = _committedJob(4, NO_LIE);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.SeedNotDrawn.selector, jobId));
        market.sampledSegments(jobId);
    }

    function test_sampledSegments_lengthIsCeilOfRateCapped() public {
        // auditRate 5 %, cap 16: N=1 → 1, N=16 → ceil(0.8)=1, N=21 → ceil(1.05)=2, N=100 → 5, N=400 → 20 → 16
        uint64[5] memory ns = [uint64(1), 16, 21, 100, 400];
        uint256[5] memory expected = [uint256(1), 1, 2, 5, 16];
        for (uint256 t = 0; t < ns.length; ++t) {
            (bytes32 jobId,) = _committedJob(ns[t], NO_LIE);
            _drawAudit(jobId);
            uint256[] memory seg = market.sampledSegments(jobId);
            assertEq(seg.length, expected[t]);
            for (uint256 i = 0; i < seg.length; ++i) {
                assertLt(seg[i], ns[t]);
                for (uint256 j = 0; j < i; ++j) {
                    assertTrue(seg[i] != seg[j], "distinct");
                }
                // the first m distinct values of keccak256(seed, j) mod N
                assertEq(seg[0], uint256(keccak256(abi.encode(market.getJob(jobId).seed, uint256(0)))) % ns[t]);
            }
        }
    }

    function test_attest_revertsWhenJobNotCommitted() public {
        bytes32 jobId = _match(4, 1);
        vm.prank(verifiers[0]);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.WrongJobState.selector, jobId, IJobMarket.JobState.Matched));
        market.attest(jobId);
    }

    function test_attest_revertsWhenAuditWindowClosed() public {
        (bytes32 jobId,) = _committedJob(4, NO_LIE);
        _drawAudit(jobId);
        address v = market.assignedVerifiers(jobId)[0];
        uint64 auditEnd = market.getJob(jobId).auditEnd;
        vm.warp(auditEnd);
        vm.prank(v);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.AuditWindowClosed.selector, auditEnd));
        market.attest(jobId);
    }

    /// @notice Issue 14 item 9: a dispute pauses the audit window, so an assigned verifier can still attest after the
    ///         stale `auditEnd` has passed while the dispute runs (the check used to read that stale end).
    function test_attest_duringDispute_afterStaleAuditEnd() public {
        (bytes32 jobId,) = _committedJob(4, NO_LIE);
        _drawAudit(jobId);
        address[] memory assigned = market.assignedVerifiers(jobId);
        uint64 auditEnd = market.getJob(jobId).auditEnd;
        vm.warp(auditEnd - 10);
        _openDispute(jobId);
        assertEq(uint8(_state(jobId)), uint8(IJobMarket.JobState.Disputed));
        vm.warp(auditEnd + 100); // the window is paused: 10 s of it are left
        assertEq(market.getJob(jobId).windowLeft, 10);
        vm.prank(assigned[0]);
        market.attest(jobId);
        assertTrue(market.hasAttested(jobId, assigned[0]));
    }

    function test_attest_revertsWhenNotAssignedVerifier() public {
        (bytes32 jobId,) = _committedJob(4, NO_LIE);
        _drawAudit(jobId);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NotAssignedVerifier.selector, alice));
        market.attest(jobId);
    }

    function test_attest_revertsWhenAlreadyAttested() public {
        (bytes32 jobId,) = _committedJob(4, NO_LIE);
        _drawAudit(jobId);
        address v = market.assignedVerifiers(jobId)[0];
        vm.prank(v);
        market.attest(jobId);
        assertTrue(market.hasAttested(jobId, v));
        vm.prank(v);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.AlreadyAttested.selector, v));
        market.attest(jobId);
    }

    // ------------------------------------------------------------ settlement

    function test_finalize_paysSolverAttestersAndRefundsUnusedFees() public {
        (bytes32 jobId,) = _committedJob(16, NO_LIE);
        _drawAudit(jobId);
        address[] memory assigned = market.assignedVerifiers(jobId);
        assertEq(assigned.length, 2);
        vm.prank(assigned[0]);
        market.attest(jobId); // the second verifier never attests

        uint256 feeBudget = PRICE * mp.auditFeeBps / 10_000; // 5 ether
        uint256 perVerifier = feeBudget / mp.verifiersPerJob; // 2.5 ether
        vm.warp(market.getJob(jobId).auditEnd);
        vm.expectEmit(address(market));
        emit IJobMarket.JobFinalized(jobId, PRICE - feeBudget, perVerifier, feeBudget - perVerifier);
        market.finalize(jobId);

        assertEq(uint8(_state(jobId)), uint8(IJobMarket.JobState.Finalized));
        assertEq(_pos(solver).claimable, 95 ether);
        assertEq(_pos(assigned[0]).claimable, 2.5 ether);
        assertEq(_pos(assigned[1]).claimable, 0);
        assertEq(_pos(submitter).claimable, 2.5 ether);
        assertEq(stakes.escrowOf(jobId), 0);
        assertEq(stakes.lockedUnder(solver, jobId), 0);
        assertEq(_pos(solver).free, 1_000 ether, "job stake unlocked");
        vm.prank(solver);
        assertEq(stakes.withdraw(), 95 ether);
    }

    function test_finalize_revertsWhenAuditWindowOpen() public {
        (bytes32 jobId,) = _committedJob(4, NO_LIE);
        uint64 auditEnd = market.getJob(jobId).auditEnd;
        vm.warp(auditEnd - 1);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.AuditWindowOpen.selector, auditEnd));
        market.finalize(jobId);
    }

    function test_finalize_revertsWhenJobNotCommitted() public {
        bytes32 jobId = _match(4, 1);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.WrongJobState.selector, jobId, IJobMarket.JobState.Matched));
        market.finalize(jobId);
        (bytes32 disputed,) = _committedJob(4, NO_LIE);
        _openDispute(disputed);
        vm.warp(block.timestamp + mp.auditWindow);
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.WrongJobState.selector, disputed, IJobMarket.JobState.Disputed)
        );
        market.finalize(disputed);
    }

    function test_expire_refundsSubmitterAndSlashesSolver() public {
        bytes32 jobId = _match(4, 1);
        IJobMarket.Job memory job = market.getJob(jobId);
        uint256 slashAmount = uint256(job.stake) * mp.expirySlashBps / 10_000; // 20 ether
        vm.warp(job.deadline);
        vm.expectEmit(address(market));
        emit IJobMarket.JobExpired(jobId, slashAmount, PRICE);
        vm.prank(alice); // anyone may call it
        market.expire(jobId);
        assertEq(uint8(_state(jobId)), uint8(IJobMarket.JobState.Expired));
        assertEq(_pos(submitter).claimable, PRICE + slashAmount);
        assertEq(_pos(solver).free, 1_000 ether - slashAmount);
        assertEq(_pos(solver).locked, 0);
        assertEq(stakes.escrowOf(jobId), 0);
        assertEq(token.balanceOf(DEAD), 0, "the expiry slash goes to the submitter, nothing burned");
    }

    function test_expire_revertsWhenDeadlineNotPassed() public {
        bytes32 jobId = _match(4, 1);
        uint64 deadline = market.getJob(jobId).deadline;
        vm.warp(deadline - 1);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.DeadlineNotPassed.selector, deadline));
        market.expire(jobId);
    }

    function test_expire_revertsWhenJobCommitted() public {
        (bytes32 jobId,) = _committedJob(4, NO_LIE);
        vm.warp(block.timestamp + 2 days);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.WrongJobState.selector, jobId, IJobMarket.JobState.Committed));
        market.expire(jobId);
    }

    function test_expire_revertsWhenUnknownJob() public {
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.UnknownJob.selector, bytes32(0)));
        market.expire(bytes32(0));
    }
}
