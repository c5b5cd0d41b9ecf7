// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {Test} from "forge-std/Test.sol";
import {VeriToken} from "../../src/VeriToken.sol";
import {StakeManager} from "../../src/StakeManager.sol";
import {JobMarket} from "../../src/JobMarket.sol";
import {DisputeGame} from "../../src/DisputeGame.sol";
import {StatePublisher} from "../../src/StatePublisher.sol";
import {IJobMarket} from "../../src/interfaces/IJobMarket.sol";
import {IDisputeGame} from "../../src/interfaces/IDisputeGame.sol";
import {IStakeManager} from "../../src/interfaces/IStakeManager.sol";
import {Headers} from "./Headers.sol";
import {TreeRef} from "./TreeRef.sol";

/// @notice Deploys the whole protocol with contracts/params/default.json (the same file protocol/deploy.py reads) and
///         offers helpers to sign orders and bids, stake actors, match and commit jobs.
abstract contract Fixture is Test {
    VeriToken internal token;
    StakeManager internal stakes;
    JobMarket internal market;
    DisputeGame internal game;
    StatePublisher internal publisher;
    IJobMarket.Params internal mp;
    IDisputeGame.Params internal gp;

    uint256 internal constant SUBMITTER_KEY = 0xA11CE;
    uint256 internal constant SOLVER_KEY = 0xB0B;
    address internal submitter;
    address internal solver;
    address internal challenger;
    address[] internal verifiers; // registered verifiers with stake, besides the challenger

    uint256 internal constant PRICE = 100 ether;
    uint64 internal constant STEPS = 64;
    uint64 internal constant INTERVAL = 4; // N = 16 leaves
    bytes32 internal constant INIT_ROOT = keccak256("C_init");

    uint256 private nonceCounter;

    function setUp() public virtual {
        string memory json = vm.readFile(string.concat(vm.projectRoot(), "/contracts/params/default.json"));
        mp = IJobMarket.Params({
            minJobStake: vm.parseJsonUint(json, ".market.minJobStake"),
            stakeMultiplierBps: vm.parseJsonUint(json, ".market.stakeMultiplierBps"),
            auditWindow: uint64(vm.parseJsonUint(json, ".market.auditWindow")),
            disputeGrace: uint64(vm.parseJsonUint(json, ".market.disputeGrace")),
            auditRateBps: uint16(vm.parseJsonUint(json, ".market.auditRateBps")),
            maxSampledSegments: uint16(vm.parseJsonUint(json, ".market.maxSampledSegments")),
            verifiersPerJob: uint8(vm.parseJsonUint(json, ".market.verifiersPerJob")),
            auditFeeBps: uint16(vm.parseJsonUint(json, ".market.auditFeeBps")),
            expirySlashBps: uint16(vm.parseJsonUint(json, ".market.expirySlashBps")),
            slashWinnerBps: uint16(vm.parseJsonUint(json, ".market.slashWinnerBps")),
            slashArbiterBps: uint16(vm.parseJsonUint(json, ".market.slashArbiterBps")),
            maxLeaves: uint64(vm.parseJsonUint(json, ".market.maxLeaves"))
        });
        gp = IDisputeGame.Params({
            disputeBond: vm.parseJsonUint(json, ".game.disputeBond"),
            arbiterStake: vm.parseJsonUint(json, ".game.arbiterStake"),
            clockBudget: uint64(vm.parseJsonUint(json, ".game.clockBudget")),
            commitPeriod: uint64(vm.parseJsonUint(json, ".game.commitPeriod")),
            revealPeriod: uint64(vm.parseJsonUint(json, ".game.revealPeriod")),
            committeeSize: uint8(vm.parseJsonUint(json, ".game.committeeSize")),
            committeeWait: uint64(vm.parseJsonUint(json, ".game.committeeWait")),
            arbiterStakeBps: uint16(vm.parseJsonUint(json, ".game.arbiterStakeBps")),
            wrongVoteSlashBps: uint16(vm.parseJsonUint(json, ".game.wrongVoteSlashBps")),
            disputeBondBps: uint16(vm.parseJsonUint(json, ".game.disputeBondBps")),
            availabilityFeeBps: uint16(vm.parseJsonUint(json, ".game.availabilityFeeBps"))
        });
        token = new VeriToken(address(this));
        stakes = new StakeManager(
            token,
            uint64(vm.parseJsonUint(json, ".stake.unbondingDelay")),
            vm.parseJsonUint(json, ".stake.minVerifierStake")
        );
        market = new JobMarket(stakes, mp);
        publisher = new StatePublisher(market);
        game = new DisputeGame(market, stakes, publisher, gp);
        stakes.bind(address(market), address(game));
        market.bindGame(address(game));

        submitter = vm.addr(SUBMITTER_KEY);
        solver = vm.addr(SOLVER_KEY);
        challenger = makeAddr("challenger");
        vm.label(submitter, "submitter");
        vm.label(solver, "solver");

        _fund(submitter, 10_000 ether);
        vm.prank(submitter);
        token.approve(address(stakes), type(uint256).max);
        _stake(solver, 1_000 ether, false);
        _stake(challenger, 1_000 ether, true);
        for (uint256 i = 0; i < 5; ++i) {
            address v = makeAddr(string.concat("verifier", vm.toString(i)));
            _stake(v, 500 ether, true);
            verifiers.push(v);
        }
        vm.warp(1_700_000_000);
        vm.roll(100);
    }

    // ----------------------------------------------------------------- actors

    function _fund(address who, uint256 amount) internal {
        token.mint(who, amount);
    }

    function _stake(address who, uint256 amount, bool verifier) internal {
        _fund(who, amount);
        vm.startPrank(who);
        token.approve(address(stakes), amount);
        stakes.deposit(amount);
        if (verifier) stakes.setVerifier(true);
        vm.stopPrank();
    }

    // ------------------------------------------------------------ orders/bids

    function _order(uint64 totalSteps, uint64 interval) internal returns (IJobMarket.JobOrder memory o) {
        o = IJobMarket.JobOrder({
            submitter: submitter,
            specHash: keccak256("spec"),
            datasetHash: keccak256("dataset"),
            initStateRoot: INIT_ROOT,
            totalSteps: totalSteps,
            checkpointInterval: interval,
            maxPrice: PRICE,
            deadline: uint64(block.timestamp + 1 days),
            nonce: ++nonceCounter
        });
    }

    function _bid(bytes32 orderHash, uint256 price) internal returns (IJobMarket.Bid memory b) {
        b = IJobMarket.Bid({
            solver: solver,
            orderHash: orderHash,
            price: price,
            stake: market.requiredStake(price),
            expiry: uint64(block.timestamp + 1 hours),
            nonce: ++nonceCounter,
            workTime: 12 hours
        });
    }

    function _sign(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    /// @notice Matches a fresh order of `totalSteps`/`interval` with a bid at PRICE; returns the job id.
    function _match(uint64 totalSteps, uint64 interval) internal returns (bytes32 jobId) {
        IJobMarket.JobOrder memory o = _order(totalSteps, interval);
        bytes32 h = market.hashOrder(o);
        IJobMarket.Bid memory b = _bid(h, PRICE);
        bytes memory orderSig = _sign(SUBMITTER_KEY, h);
        bytes memory bidSig = _sign(SOLVER_KEY, market.hashBid(b));
        vm.prank(submitter);
        jobId = market.acceptBid(o, orderSig, b, bidSig);
    }

    // ------------------------------------------------------------ trajectories

    /// @notice Leaf entries (state roots) of a toy trajectory: C_{i} = H(C_{i-1}) starting from `init`, i.e. the toy
    ///         transition function the actor tests replay. `lieFrom` (< n) makes every leaf from there on wrong.
    function _toyLeaves(bytes32 init, uint256 n, uint256 lieFrom) internal pure returns (bytes32[] memory leaves) {
        leaves = new bytes32[](n);
        bytes32 state = init;
        for (uint256 i = 0; i < n; ++i) {
            state = toyStep(state);
            leaves[i] = i >= lieFrom ? keccak256(abi.encode("lie", state)) : state;
        }
    }

    /// @notice The toy state after `pre`: its canonical bytes (one short chunk), which an honest solver publishes when
    ///         an availability challenge names its leaf.
    function toyState(bytes32 pre) internal pure returns (bytes memory) {
        return abi.encode("step", pre);
    }

    /// @notice The toy transition: the state root of toyState(pre) (DESIGN §3; one short chunk: H(0x00 ‖ bytes)).
    function toyStep(bytes32 pre) internal pure returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x00), toyState(pre)));
    }

    /// @notice RFC 9162 root of leaf entries [lo, hi) (see TreeRef).
    function _root(bytes32[] memory leaves, uint256 lo, uint256 hi) internal view returns (bytes32) {
        return TreeRef.root(leaves, lo, hi);
    }

    /// @notice RFC 9162 audit path (bottom-up siblings) of leaf `index` in leaves [lo, hi) (see TreeRef).
    function _path(bytes32[] memory leaves, uint256 index, uint256 lo, uint256 hi)
        internal
        view
        returns (bytes32[] memory)
    {
        return TreeRef.path(leaves, index, lo, hi);
    }

    /// @notice Commits `leaves` for `jobId` as its solver.
    function _commit(bytes32 jobId, bytes32[] memory leaves) internal {
        uint256 n = leaves.length;
        bytes32[] memory proof = _path(leaves, n - 1, 0, n);
        bytes32 root = _root(leaves, 0, n); // computed before the prank: precompile calls would consume it
        vm.prank(solver);
        market.commit(jobId, root, uint64(n), leaves[n - 1], proof, "http://solver.invalid/blobs");
    }

    /// @notice Mines past the audit seed block and draws the audit.
    function _drawAudit(bytes32 jobId) internal {
        vm.roll(market.getJob(jobId).seedBlock + 1);
        market.drawAudit(jobId, _auditHeader(jobId));
    }

    /// @notice The RLP header of block `number`; if the block's hash is readable now (one of the last 256 blocks),
    ///         the chain's blockhash of it becomes the header's hash. Its RANDAO value derives from the hash the test
    ///         chose for that block before (vm.setBlockhash), so tests that vary it still vary the seed.
    function _header(uint256 number) internal returns (bytes memory header) {
        header = Headers.encode(number, _randao(number));
        if (number < block.number && block.number - number <= 256) vm.setBlockhash(number, keccak256(header));
    }

    /// @notice The RANDAO value _header(number) puts in block `number`'s header (call it before _header).
    function _randao(uint256 number) internal view returns (bytes32) {
        return keccak256(abi.encode("randao", number, blockhash(number)));
    }

    /// @notice The header of `jobId`'s audit seed block (see _header).
    function _auditHeader(bytes32 jobId) internal returns (bytes memory) {
        return _header(market.getJob(jobId).seedBlock);
    }

    /// @notice The header of dispute `id`'s committee seed block (see _header).
    function _committeeHeader(uint256 id) internal returns (bytes memory) {
        return _header(game.getDispute(id).seedBlock);
    }
}

/// @notice Smoke test of the fixture itself: a honest job goes Matched → Committed → Finalized.
contract FixtureSmokeTest is Fixture {
    function test_fixture_honestJobFinalizes() public {
        bytes32 jobId = _match(STEPS, INTERVAL);
        bytes32[] memory leaves = _toyLeaves(INIT_ROOT, STEPS / INTERVAL, type(uint256).max);
        _commit(jobId, leaves);
        _drawAudit(jobId);
        assertEq(market.assignedVerifiers(jobId).length, mp.verifiersPerJob);
        vm.warp(block.timestamp + mp.auditWindow);
        market.finalize(jobId);
        assertEq(uint8(market.getJob(jobId).state), uint8(IJobMarket.JobState.Finalized));
    }
}
