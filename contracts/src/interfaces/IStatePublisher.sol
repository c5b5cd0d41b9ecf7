// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

/// @title IStatePublisher
/// @notice Makes a committed checkpoint retrievable by everyone: its canonical bytes are published in the calldata
///         of `publish` calls, and the contract checks that they hash (ChunkedStateRoot, DESIGN §3) to leaf `leaf`
///         of the job's committed trajectory. Anyone reads them back from those transactions (`StateBytes` events
///         name them). The answer to an availability challenge (IDisputeGame.requestAvailability).
interface IStatePublisher {
    /// @notice No committed trajectory has `leaf` (the job is not committed, or leaf >= N).
    error NoSuchLeaf(bytes32 jobId, uint64 leaf);
    /// @notice The published bytes hash to `root`, which the proof does not place at `leaf` of the trajectory.
    error NotTheCommittedLeaf(bytes32 jobId, uint64 leaf, bytes32 root);
    /// @notice This leaf of this job is published already.
    error AlreadyPublished(bytes32 jobId, uint64 leaf);

    /// @notice `length` bytes of leaf `leaf` starting at `offset`, in the calldata of this transaction.
    event StateBytes(
        bytes32 indexed jobId, uint64 indexed leaf, address indexed publisher, uint64 offset, uint64 length
    );
    /// @notice Every byte of leaf `leaf` is on chain and hashes to its committed state root `root`.
    event StatePublished(bytes32 indexed jobId, uint64 indexed leaf, address indexed publisher, bytes32 root);

    /// @notice Feeds the next `data` of leaf `leaf`'s canonical state bytes (a whole number of 4096-byte chunks, or,
    ///         with `last`, the rest). With `last`, `proof` is the inclusion proof of the resulting root as leaf
    ///         `leaf` against the job's trajectory root. Each publisher feeds its own copy, so nobody can spoil
    ///         another's.
    function publish(bytes32 jobId, uint64 leaf, bytes calldata data, bool last, bytes32[] calldata proof) external;
    /// @notice Forgets what the caller fed for leaf `leaf` of `jobId` (after feeding wrong bytes), to start again.
    function restart(bytes32 jobId, uint64 leaf) external;
    /// @notice When leaf `leaf` of `jobId` was published (by anyone); 0 if it is not.
    function publishedAt(bytes32 jobId, uint64 leaf) external view returns (uint64);
    /// @notice Bytes `publisher` has fed so far for leaf `leaf` of `jobId`.
    function bytesFed(bytes32 jobId, uint64 leaf, address publisher) external view returns (uint64);
}
