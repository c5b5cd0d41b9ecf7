// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {Fixture} from "../utils/Fixture.sol";
import {IJobMarket} from "../../src/interfaces/IJobMarket.sol";

/// @notice The EIP-712 digests of JobOrder and Bid, recomputed here from the type strings of DESIGN §6, and
///         signatures from random keys accepted only from the right signer.
contract EIP712FuzzTest is Fixture {
    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 internal constant ORDER_TYPEHASH = keccak256(
        "JobOrder(address submitter,bytes32 specHash,bytes32 datasetHash,bytes32 initStateRoot,uint64 totalSteps,uint64 checkpointInterval,uint256 maxPrice,uint64 deadline,uint256 nonce)"
    );
    bytes32 internal constant BID_TYPEHASH = keccak256(
        "Bid(address solver,bytes32 orderHash,uint256 price,uint256 stake,uint64 expiry,uint256 nonce,uint64 workTime)"
    );

    /// @dev secp256k1 group order.
    uint256 internal constant SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;

    function _domain() internal view returns (bytes32) {
        return
            keccak256(
                abi.encode(DOMAIN_TYPEHASH, keccak256("veritrain"), keccak256("1"), block.chainid, address(market))
            );
    }

    function _digest(bytes32 structHash) internal view returns (bytes32) {
        return keccak256(abi.encodePacked(hex"1901", _domain(), structHash));
    }

    function _orderDigest(IJobMarket.JobOrder memory o) internal view returns (bytes32) {
        return _digest(
            keccak256(
                abi.encode(
                    ORDER_TYPEHASH,
                    o.submitter,
                    o.specHash,
                    o.datasetHash,
                    o.initStateRoot,
                    o.totalSteps,
                    o.checkpointInterval,
                    o.maxPrice,
                    o.deadline,
                    o.nonce
                )
            )
        );
    }

    function _bidDigest(IJobMarket.Bid memory b) internal view returns (bytes32) {
        return _digest(
            keccak256(abi.encode(BID_TYPEHASH, b.solver, b.orderHash, b.price, b.stake, b.expiry, b.nonce, b.workTime))
        );
    }

    function _chain(uint64 chainRaw) internal {
        vm.chainId(_bound(chainRaw, 1, type(uint64).max));
    }

    // ------------------------------------------------------------------ digests

    function test_typehashes_matchContract() public view {
        assertEq(market.JOB_ORDER_TYPEHASH(), ORDER_TYPEHASH);
        assertEq(market.BID_TYPEHASH(), BID_TYPEHASH);
        assertEq(market.domainSeparator(), _domain());
        (, string memory name, string memory version, uint256 chainId, address verifyingContract,,) =
            market.eip712Domain();
        assertEq(name, "veritrain");
        assertEq(version, "1");
        assertEq(chainId, block.chainid);
        assertEq(verifyingContract, address(market));
    }

    function testFuzz_hashOrder_matchesTypedDataDigest(IJobMarket.JobOrder memory o, uint64 chainRaw) public {
        _chain(chainRaw);
        assertEq(market.domainSeparator(), _domain());
        assertEq(market.hashOrder(o), _orderDigest(o));
    }

    function testFuzz_hashBid_matchesTypedDataDigest(IJobMarket.Bid memory b, uint64 chainRaw) public {
        _chain(chainRaw);
        assertEq(market.hashBid(b), _bidDigest(b));
    }

    function testFuzz_hashOrder_dependsOnEveryField(IJobMarket.JobOrder memory o, uint256 which, uint256 delta)
        public
        view
    {
        delta = _bound(delta, 1, type(uint64).max);
        IJobMarket.JobOrder memory p = IJobMarket.JobOrder(
            o.submitter,
            o.specHash,
            o.datasetHash,
            o.initStateRoot,
            o.totalSteps,
            o.checkpointInterval,
            o.maxPrice,
            o.deadline,
            o.nonce
        );
        which = _bound(which, 0, 8);
        if (which == 0) p.submitter = address(uint160(p.submitter) ^ uint160(delta));
        else if (which == 1) p.specHash ^= bytes32(delta);
        else if (which == 2) p.datasetHash ^= bytes32(delta);
        else if (which == 3) p.initStateRoot ^= bytes32(delta);
        else if (which == 4) p.totalSteps ^= uint64(delta);
        else if (which == 5) p.checkpointInterval ^= uint64(delta);
        else if (which == 6) p.maxPrice ^= delta;
        else if (which == 7) p.deadline ^= uint64(delta);
        else p.nonce ^= delta;
        assertTrue(market.hashOrder(p) != market.hashOrder(o));
    }

    // ---------------------------------------------------------------- signers

    struct Keys {
        uint256 submitterKey;
        uint256 solverKey;
        uint256 wrongKey;
    }

    function _keys(uint256 a, uint256 b, uint256 c) internal pure returns (Keys memory k) {
        k.submitterKey = _bound(a, 1, SECP256K1_N - 1);
        k.solverKey = _bound(b, 1, SECP256K1_N - 1);
        k.wrongKey = _bound(c, 1, SECP256K1_N - 1);
        vm.assume(k.submitterKey != k.solverKey);
        vm.assume(k.wrongKey != k.submitterKey && k.wrongKey != k.solverKey);
    }

    function testFuzz_acceptBid_onlyRightSignersAccepted(
        uint256 submitterKeyRaw,
        uint256 solverKeyRaw,
        uint256 wrongKeyRaw,
        bytes32 specHash,
        uint256 price,
        uint256 orderNonce,
        uint256 bidNonce
    ) public {
        Keys memory k = _keys(submitterKeyRaw, solverKeyRaw, wrongKeyRaw);
        (IJobMarket.JobOrder memory o, IJobMarket.Bid memory b) =
            _pair(k, specHash, _bound(price, 0, 1e30), orderNonce, bidNonce);
        _expectWrongSignersRefused(k, o, b);

        // the right signers: accepted
        bytes memory orderSig = _sign(k.submitterKey, _orderDigest(o));
        bytes memory bidSig = _sign(k.solverKey, _bidDigest(b));
        vm.prank(o.submitter);
        bytes32 jobId = market.acceptBid(o, orderSig, b, bidSig);
        assertEq(jobId, _orderDigest(o));
        assertEq(uint8(market.getJob(jobId).state), uint8(IJobMarket.JobState.Matched));
        assertEq(stakes.escrowOf(jobId), b.price);
        assertTrue(market.nonceUsed(o.submitter, orderNonce));
        assertTrue(market.nonceUsed(b.solver, bidNonce));
    }

    /// @dev A fresh order/bid pair between the two fuzzed keys, with the tokens and stake to match it.
    function _pair(Keys memory k, bytes32 specHash, uint256 price, uint256 orderNonce, uint256 bidNonce)
        internal
        returns (IJobMarket.JobOrder memory o, IJobMarket.Bid memory b)
    {
        o = IJobMarket.JobOrder({
            submitter: vm.addr(k.submitterKey),
            specHash: specHash,
            datasetHash: keccak256(abi.encode(specHash)),
            initStateRoot: INIT_ROOT,
            totalSteps: 64,
            checkpointInterval: 4,
            maxPrice: price,
            deadline: uint64(block.timestamp + 1 days),
            nonce: orderNonce
        });
        b = IJobMarket.Bid({
            solver: vm.addr(k.solverKey),
            orderHash: _orderDigest(o),
            price: price,
            stake: market.requiredStake(price),
            expiry: uint64(block.timestamp + 1 hours),
            nonce: bidNonce,
            workTime: 12 hours
        });
        _fund(o.submitter, price);
        vm.prank(o.submitter);
        token.approve(address(stakes), price);
        _stake(b.solver, b.stake, false);
    }

    function _expectWrongSignersRefused(Keys memory k, IJobMarket.JobOrder memory o, IJobMarket.Bid memory b) internal {
        bytes32 orderDigest = _orderDigest(o);
        bytes32 bidDigest = _bidDigest(b);
        bytes memory goodOrderSig = _sign(k.submitterKey, orderDigest);
        bytes memory goodBidSig = _sign(k.solverKey, bidDigest);

        // the order signed by anyone else (the solver included) is refused
        bytes memory bad = _sign(k.wrongKey, orderDigest);
        vm.prank(o.submitter);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InvalidSignature.selector, o.submitter));
        market.acceptBid(o, bad, b, goodBidSig);
        bad = _sign(k.solverKey, orderDigest);
        vm.prank(o.submitter);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InvalidSignature.selector, o.submitter));
        market.acceptBid(o, bad, b, goodBidSig);

        // the bid signed by anyone else (the submitter included) is refused
        bad = _sign(k.wrongKey, bidDigest);
        vm.prank(o.submitter);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InvalidSignature.selector, b.solver));
        market.acceptBid(o, goodOrderSig, b, bad);
        bad = _sign(k.submitterKey, bidDigest);
        vm.prank(o.submitter);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InvalidSignature.selector, b.solver));
        market.acceptBid(o, goodOrderSig, b, bad);

        // a signed bid whose nonce was changed afterwards no longer matches its signature
        uint256 nonce = b.nonce;
        b.nonce = nonce ^ 1;
        vm.prank(o.submitter);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.InvalidSignature.selector, b.solver));
        market.acceptBid(o, goodOrderSig, b, goodBidSig);
        b.nonce = nonce;
    }

    function testFuzz_cancelNonce_onlyThatNonce(address signer, uint256 nonce, uint256 other) public {
        vm.assume(other != nonce);
        vm.prank(signer);
        market.cancelNonce(nonce);
        assertTrue(market.nonceUsed(signer, nonce));
        assertFalse(market.nonceUsed(signer, other));
        vm.prank(signer);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.NonceUsed.selector, signer, nonce));
        market.cancelNonce(nonce);
    }
}
