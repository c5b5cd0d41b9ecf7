// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IStakeManager} from "./interfaces/IStakeManager.sol";
import {CheckpointedSumTree} from "./libraries/CheckpointedSumTree.sol";
import {Sampling} from "./libraries/Sampling.sol";

/// @title StakeManager
/// @notice Holds solver and verifier stakes, job escrow and credits; see IStakeManager. Registered verifiers with at
///         least `minVerifierStake` bonded are kept in a checkpointed sum tree weighted by bonded stake: audit and
///         committee draws read the weights of a block mined before their seed was known, at O(log n) cost however
///         many stakers there are.
contract StakeManager is IStakeManager, ReentrancyGuard {
    using SafeERC20 for IERC20;
    using CheckpointedSumTree for CheckpointedSumTree.Tree;

    /// @notice Slashed tokens that are burned go here (no key is known for it).
    address public constant BURN_ADDRESS = 0x000000000000000000000000000000000000dEaD;
    /// @notice `drawDistinct` steps over at most this many members per seat whose weight is below `minWeight`.
    uint256 public constant MAX_LIGHT_DRAWS_PER_SEAT = 4;

    IERC20 public immutable token;
    uint64 public immutable unbondingDelay;
    uint256 public immutable minVerifierStake;
    address private immutable deployer;

    address public market;
    address public game;

    struct Account {
        uint256 free;
        uint256 locked;
        uint256 unbonding;
        uint256 claimable;
        uint64 releaseAt;
        bool verifier;
    }

    mapping(address account => Account) private accounts;
    mapping(address account => mapping(bytes32 key => uint256 amount)) public lockedUnder;
    mapping(bytes32 jobId => uint256 amount) public escrowOf;
    CheckpointedSumTree.Tree private pool;

    modifier onlyOperator() {
        if (msg.sender != market && msg.sender != game) revert NotOperator(msg.sender);
        _;
    }

    modifier onlyMarket() {
        if (msg.sender != market) revert NotMarket(msg.sender);
        _;
    }

    constructor(IERC20 token_, uint64 unbondingDelay_, uint256 minVerifierStake_) {
        if (address(token_) == address(0)) revert ZeroAddress();
        if (minVerifierStake_ == 0) revert ZeroAmount();
        token = token_;
        unbondingDelay = unbondingDelay_;
        minVerifierStake = minVerifierStake_;
        deployer = msg.sender;
    }

    /// @inheritdoc IStakeManager
    function bind(address market_, address game_) external {
        if (msg.sender != deployer) revert NotDeployer(msg.sender);
        if (market != address(0)) revert AlreadyBound();
        if (market_ == address(0) || game_ == address(0)) revert ZeroAddress();
        market = market_;
        game = game_;
        emit OperatorsBound(market_, game_);
    }

    // ------------------------------------------------------------------ stakers

    /// @inheritdoc IStakeManager
    function deposit(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        Account storage a = accounts[msg.sender];
        a.free += amount;
        _syncWeight(msg.sender, a);
        emit Deposited(msg.sender, amount);
        _pull(msg.sender, amount);
    }

    /// @inheritdoc IStakeManager
    function setVerifier(bool active) external {
        Account storage a = accounts[msg.sender];
        a.verifier = active;
        _syncWeight(msg.sender, a);
        emit VerifierStatusChanged(msg.sender, active);
    }

    /// @inheritdoc IStakeManager
    function requestWithdrawal(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        Account storage a = accounts[msg.sender];
        if (a.free < amount) revert InsufficientFreeStake(msg.sender, amount, a.free);
        a.free -= amount;
        a.unbonding += amount;
        uint64 releaseAt = uint64(block.timestamp) + unbondingDelay;
        a.releaseAt = releaseAt;
        _syncWeight(msg.sender, a);
        emit WithdrawalRequested(msg.sender, amount, releaseAt);
    }

    /// @inheritdoc IStakeManager
    function withdraw() external nonReentrant returns (uint256 amount) {
        Account storage a = accounts[msg.sender];
        amount = a.claimable;
        a.claimable = 0;
        if (a.unbonding != 0 && block.timestamp >= a.releaseAt) {
            amount += a.unbonding;
            a.unbonding = 0;
        }
        if (amount == 0) revert NothingToWithdraw(a.unbonding == 0 ? 0 : a.releaseAt);
        emit Withdrawn(msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }

    // ---------------------------------------------------------------- operators

    /// @inheritdoc IStakeManager
    function lock(address account, bytes32 key, uint256 amount) external onlyOperator {
        if (amount == 0) revert ZeroAmount();
        if (lockedUnder[account][key] != 0) revert LockExists(account, key);
        Account storage a = accounts[account];
        if (a.free < amount) revert InsufficientFreeStake(account, amount, a.free);
        a.free -= amount;
        a.locked += amount;
        lockedUnder[account][key] = amount;
        _syncWeight(account, a);
        emit StakeLocked(account, key, amount);
    }

    /// @inheritdoc IStakeManager
    function unlock(address account, bytes32 key) external onlyOperator {
        uint256 amount = lockedUnder[account][key];
        if (amount == 0) revert NoLock(account, key);
        _release(account, key, amount);
    }

    /// @inheritdoc IStakeManager
    function slash(
        address account,
        bytes32 key,
        uint256 amount,
        address[] calldata recipients,
        uint256[] calldata amounts
    ) external onlyOperator {
        if (recipients.length != amounts.length) revert LengthMismatch();
        Account storage a = accounts[account];
        uint256 fromLock = lockedUnder[account][key];
        // INVARIANT: only locked stake is ever slashed; every operator slashes at most what it locked.
        if (amount > fromLock) revert SlashExceedsLock(account, key, amount, fromLock);
        lockedUnder[account][key] = 0;
        a.locked -= fromLock;
        a.free += fromLock - amount; // the rest of the lock goes back to free stake
        if (fromLock != amount) emit StakeUnlocked(account, key, fromLock - amount);
        uint256 slashed = amount;
        _syncWeight(account, a);

        uint256 shares = 0;
        for (uint256 i = 0; i < recipients.length; ++i) {
            shares += amounts[i];
        }
        if (shares > slashed) revert SharesExceedSlash(shares, slashed);
        for (uint256 i = 0; i < recipients.length; ++i) {
            _credit(recipients[i], amounts[i]);
        }
        uint256 burned = slashed - shares;
        emit StakeSlashed(account, key, slashed, burned);
        if (burned != 0) token.safeTransfer(BURN_ADDRESS, burned);
    }

    /// @inheritdoc IStakeManager
    function escrow(bytes32 jobId, address payer, uint256 amount) external onlyMarket nonReentrant {
        if (amount == 0) revert ZeroAmount();
        if (escrowOf[jobId] != 0) revert EscrowExists(jobId);
        escrowOf[jobId] = amount;
        emit Escrowed(jobId, payer, amount);
        // Only the JobMarket calls this, with `payer` = the order's submitter, who signed the order and is the
        // caller of acceptBid; no one can pull another account's tokens through it.
        _pull(payer, amount);
    }

    /// @inheritdoc IStakeManager
    function releaseEscrow(bytes32 jobId, address to, uint256 amount) external onlyMarket {
        uint256 available = escrowOf[jobId];
        if (amount > available) revert InsufficientEscrow(jobId, amount, available);
        escrowOf[jobId] = available - amount;
        emit EscrowReleased(jobId, to, amount);
        _credit(to, amount);
    }

    // -------------------------------------------------------------------- views

    /// @inheritdoc IStakeManager
    function drawDistinct(bytes32 seed, uint256 count, address[] calldata exclude, uint256 minWeight, uint256 asOfBlock)
        external
        view
        returns (address[] memory drawn)
    {
        uint48 at = _pastBlock(asOfBlock);
        uint256 e = exclude.length;
        address[] memory skip = new address[](e + count + MAX_LIGHT_DRAWS_PER_SEAT * count);
        for (uint256 i = 0; i < e; ++i) {
            skip[i] = exclude[i];
        }
        return _drawSeats(seed, count, skip, e, at, minWeight);
    }

    /// @dev Skipped = the excluded parties (skip[0 .. e)), then each member as it is drawn (seated, or stepped over):
    ///      every draw lands on a new member. Draw k uses derive(seed, k) whatever became of draw k - 1, so the
    ///      candidates are fixed by the seed and the weights at `at`; what happened since can only step one over.
    function _drawSeats(bytes32 seed, uint256 count, address[] memory skip, uint256 e, uint48 at, uint256 minWeight)
        private
        view
        returns (address[] memory drawn)
    {
        drawn = new address[](count);
        uint256 n = 0;
        uint256 light = 0;
        while (n < count) {
            uint256 k = n + light;
            address candidate = pool.drawSkippingAt(uint256(Sampling.derive(seed, k)), skip, e + k, at);
            if (candidate == address(0)) break; // no eligible member left
            skip[e + k] = candidate;
            if (_seatable(candidate, at, minWeight)) {
                drawn[n++] = candidate;
            } else if (++light > MAX_LIGHT_DRAWS_PER_SEAT * count) {
                break; // bounded gas: the caller sees a short draw
            }
        }
        // Shrink to the members seated (memory only; the unused tail is never read).
        assembly ("memory-safe") {
            mstore(drawn, n)
        }
    }

    /// @dev A candidate takes its seat only if its weight at `at` reached max(minWeight, 1) (topping up after the seed
    ///      is known seats nobody), it is still a registered verifier, and it can lock `minWeight` from its free stake.
    function _seatable(address candidate, uint48 at, uint256 minWeight) private view returns (bool) {
        uint256 need = minWeight == 0 ? 1 : minWeight;
        return
            pool.weightAt(candidate, at) >= need && pool.weightOf(candidate) != 0
                && accounts[candidate].free >= minWeight;
    }

    function positionOf(address account) external view returns (Position memory) {
        Account storage a = accounts[account];
        return Position(a.free, a.locked, a.unbonding, a.releaseAt, a.claimable, a.verifier);
    }

    function totalDrawWeight() external view returns (uint256) {
        return pool.total();
    }

    function drawWeightOf(address account) external view returns (uint256) {
        return pool.weightOf(account);
    }

    function totalDrawWeightAt(uint256 blockNumber) external view returns (uint256) {
        return pool.totalAt(_pastBlock(blockNumber));
    }

    function drawWeightAt(address account, uint256 blockNumber) external view returns (uint256) {
        return pool.weightAt(account, _pastBlock(blockNumber));
    }

    // ----------------------------------------------------------------- internal

    /// @dev Weights are final only for blocks before this one.
    function _pastBlock(uint256 blockNumber) private view returns (uint48) {
        if (blockNumber >= block.number) revert DrawBlockNotPast(blockNumber, block.number);
        return uint48(blockNumber);
    }

    function _release(address account, bytes32 key, uint256 amount) private {
        Account storage a = accounts[account];
        lockedUnder[account][key] = 0;
        a.locked -= amount;
        a.free += amount;
        _syncWeight(account, a);
        emit StakeUnlocked(account, key, amount);
    }

    /// @dev Pulls exactly `amount` from `from`: a token that delivers less (fee on transfer) or more would break
    ///      conservation (balance == Σ positions + escrow), so it is refused by name.
    function _pull(address from, uint256 amount) private {
        uint256 before = token.balanceOf(address(this));
        // Only `deposit` (from = the caller) and the market's `escrow` (from = the order's signing submitter, the
        // caller of acceptBid) get here: no one can pull another account's tokens through it.
        // slither-disable-next-line arbitrary-send-erc20
        token.safeTransferFrom(from, address(this), amount);
        uint256 received = token.balanceOf(address(this)) - before;
        if (received != amount) revert TransferAmountMismatch(amount, received);
    }

    function _credit(address to, uint256 amount) private {
        if (amount == 0) return;
        if (to == address(0)) revert ZeroAddress();
        accounts[to].claimable += amount;
        emit Credited(to, amount);
    }

    /// @dev Draw weight is the bonded stake (free + locked: everything still slashable or lockable, not unbonding) of
    ///      a registered verifier holding at least `minVerifierStake` bonded, else 0. Locks and unlocks move stake
    ///      between free and locked only, so they leave the weights (and their history) untouched.
    function _syncWeight(address account, Account storage a) private {
        uint256 bonded = a.free + a.locked;
        pool.set(account, (a.verifier && bonded >= minVerifierStake) ? bonded : 0);
    }
}
