// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {IJobMarket} from "./interfaces/IJobMarket.sol";
import {IStatePublisher} from "./interfaces/IStatePublisher.sol";
import {ChunkedStateRoot} from "./libraries/ChunkedStateRoot.sol";
import {RFC9162} from "./libraries/RFC9162.sol";

/// @title StatePublisher
/// @notice See IStatePublisher. Holds no tokens and moves none: it only proves that bytes on chain are a committed
///         checkpoint. Calldata costs the publisher 16 gas a byte (about 17 M gas for a 1 MiB state), which is what
///         a solver that withheld a checkpoint pays to answer an availability challenge.
contract StatePublisher is IStatePublisher {
    using ChunkedStateRoot for ChunkedStateRoot.Hasher;

    IJobMarket public immutable market;

    mapping(bytes32 jobId => mapping(uint64 leaf => mapping(address publisher => ChunkedStateRoot.Hasher))) private
        hashers;
    mapping(bytes32 jobId => mapping(uint64 leaf => uint64 at)) private published;

    constructor(IJobMarket market_) {
        market = market_;
    }

    /// @inheritdoc IStatePublisher
    function publish(bytes32 jobId, uint64 leaf, bytes calldata data, bool last, bytes32[] calldata proof) external {
        if (published[jobId][leaf] != 0) revert AlreadyPublished(jobId, leaf);
        IJobMarket.Job memory job = market.getJob(jobId);
        // A trajectory exists once committed: Committed, Disputed, and the settled states after them.
        if (job.trajectoryRoot == bytes32(0) || leaf >= job.numLeaves) revert NoSuchLeaf(jobId, leaf);
        ChunkedStateRoot.Hasher storage h = hashers[jobId][leaf][msg.sender];
        uint64 offset = h.bytesFed;
        h.feed(data, last);
        // forge-lint: disable-next-line(unsafe-typecast)
        emit StateBytes(jobId, leaf, msg.sender, offset, uint64(data.length)); // calldata length, far below 2^64
        if (!last) return;
        bytes32 root = h.root();
        if (!RFC9162.verifyInclusion(job.trajectoryRoot, RFC9162.hashLeaf(root), leaf, job.numLeaves, proof)) {
            revert NotTheCommittedLeaf(jobId, leaf, root);
        }
        published[jobId][leaf] = uint64(block.timestamp);
        emit StatePublished(jobId, leaf, msg.sender, root);
    }

    /// @inheritdoc IStatePublisher
    function restart(bytes32 jobId, uint64 leaf) external {
        delete hashers[jobId][leaf][msg.sender];
    }

    /// @inheritdoc IStatePublisher
    function publishedAt(bytes32 jobId, uint64 leaf) external view returns (uint64) {
        return published[jobId][leaf];
    }

    /// @inheritdoc IStatePublisher
    function bytesFed(bytes32 jobId, uint64 leaf, address publisher) external view returns (uint64) {
        return hashers[jobId][leaf][publisher].bytesFed;
    }
}
