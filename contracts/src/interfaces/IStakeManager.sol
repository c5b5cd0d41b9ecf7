// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title IStakeManager
/// @notice The one vault of the protocol. It holds every token the protocol holds: stakes (free, locked per job or
///         dispute, unbonding), job escrow, and credits waiting to be withdrawn. Money leaves only by `withdraw`
///         (pull payments) or by being burned in a slash.
/// @dev Conservation: token.balanceOf(this) == Σ free + Σ locked + Σ unbonding + Σ escrow + Σ claimable.
interface IStakeManager {
    /// @notice Zero amount where a positive one is required.
    error ZeroAmount();
    /// @notice A zero address where a real one is required.
    error ZeroAddress();
    /// @notice Only the bound JobMarket or DisputeGame may call this.
    error NotOperator(address caller);
    /// @notice Only the JobMarket may call this.
    error NotMarket(address caller);
    /// @notice Only the deployer may bind the operators, once.
    error NotDeployer(address caller);
    /// @notice The operators are already bound.
    error AlreadyBound();
    /// @notice `account` has `available` free stake; `needed` was asked for.
    error InsufficientFreeStake(address account, uint256 needed, uint256 available);
    /// @notice A lock under `key` already exists for `account`.
    error LockExists(address account, bytes32 key);
    /// @notice No lock under `key` for `account`.
    error NoLock(address account, bytes32 key);
    /// @notice `jobId` already has escrow.
    error EscrowExists(bytes32 jobId);
    /// @notice Releasing `requested` from the escrow of `jobId`, which holds `available`.
    error InsufficientEscrow(bytes32 jobId, uint256 requested, uint256 available);
    /// @notice Shares handed out in a slash add up to more than the slashed amount.
    error SharesExceedSlash(uint256 shares, uint256 slashed);
    /// @notice Recipients and amounts differ in length.
    error LengthMismatch();
    /// @notice A transfer into the vault delivered `received` instead of `expected` (fee-on-transfer or rebasing token).
    error TransferAmountMismatch(uint256 expected, uint256 received);
    /// @notice A slash of `amount` under `key` exceeds the `locked` amount there (only locked stake is slashable).
    error SlashExceedsLock(address account, bytes32 key, uint256 amount, uint256 locked);
    /// @notice Nothing is withdrawable now (no credit; unbonding stake, if any, matures at `releaseAt`).
    error NothingToWithdraw(uint64 releaseAt);
    /// @notice Draw weights are read at the end of a past block only (the current block's can still change).
    error DrawBlockNotPast(uint256 asOfBlock, uint256 currentBlock);

    event OperatorsBound(address market, address game);
    event Deposited(address indexed account, uint256 amount);
    event VerifierStatusChanged(address indexed account, bool active);
    event WithdrawalRequested(address indexed account, uint256 amount, uint64 releaseAt);
    event Withdrawn(address indexed account, uint256 amount);
    event StakeLocked(address indexed account, bytes32 indexed key, uint256 amount);
    event StakeUnlocked(address indexed account, bytes32 indexed key, uint256 amount);
    /// @notice `amount` of `account`'s stake under `key` was slashed; `burned` of it was burned, the rest credited.
    event StakeSlashed(address indexed account, bytes32 indexed key, uint256 amount, uint256 burned);
    event Credited(address indexed account, uint256 amount);
    event Escrowed(bytes32 indexed jobId, address indexed payer, uint256 amount);
    event EscrowReleased(bytes32 indexed jobId, address indexed to, uint256 amount);

    /// @notice One account's position, in token base units.
    struct Position {
        uint256 free;
        uint256 locked;
        uint256 unbonding;
        uint64 releaseAt;
        uint256 claimable;
        bool verifier;
    }

    function token() external view returns (IERC20);
    function market() external view returns (address);
    function game() external view returns (address);
    /// @notice Seconds between `requestWithdrawal` and the stake becoming withdrawable.
    function unbondingDelay() external view returns (uint64);
    /// @notice Free stake a registered verifier needs to be drawn for audits and committees.
    function minVerifierStake() external view returns (uint256);

    /// @notice Binds the two operators; callable once, by the deployer.
    function bind(address market_, address game_) external;

    /// @notice Pulls `amount` tokens (approved to this contract) into the caller's free stake.
    function deposit(uint256 amount) external;
    /// @notice Joins (true) or leaves (false) the pool drawn for audits and arbitration, weighted by free stake.
    function setVerifier(bool active) external;
    /// @notice Moves `amount` of free stake into unbonding (out of the draw pool, not lockable); it is paid by
    ///         `withdraw` after `releaseAt`. A new request adds to the pending amount and restarts the delay.
    function requestWithdrawal(uint256 amount) external;
    /// @notice Pays the caller its credits plus any matured unbonding stake. Reverts with `NothingToWithdraw`.
    function withdraw() external returns (uint256 amount);

    /// @notice Operator: locks `amount` of `account`'s free stake under `key`.
    function lock(address account, bytes32 key, uint256 amount) external;
    /// @notice Operator: returns the whole lock under `key` to free stake.
    function unlock(address account, bytes32 key) external;
    /// @notice Operator: slashes `amount` (at most the lock, `SlashExceedsLock`) of the lock under `key` of
    ///         `account`. `amounts[i]` is credited to `recipients[i]`, the rest burned; whatever remains of the lock is
    ///         unlocked. Free and unbonding stake are never slashed. `StakeSlashed` reports what was taken.
    function slash(
        address account,
        bytes32 key,
        uint256 amount,
        address[] calldata recipients,
        uint256[] calldata amounts
    ) external;
    /// @notice Market: pulls `amount` tokens from `payer` (approved to this contract) into the escrow of `jobId`.
    function escrow(bytes32 jobId, address payer, uint256 amount) external;
    /// @notice Market: credits `amount` of `jobId`'s escrow to `to`.
    function releaseEscrow(bytes32 jobId, address to, uint256 amount) external;

    /// @notice Up to `count` distinct registered verifiers, drawn from `seed` by their draw weight (free stake) at the
    ///         end of block `asOfBlock` (< now), none in `exclude`. Draw `k` uses `keccak256(abi.encode(seed, k))` over
    ///         the weight then of the members not yet excluded or drawn, so each draw lands on a new member and the
    ///         sequence of candidates is fixed by the seed and the weights then. A candidate is stepped over (at most
    ///         MAX_LIGHT_DRAWS_PER_SEAT · count of them) unless its weight then and now are both at least
    ///         max(minWeight, 1): topping up after the seed is known seats nobody. Fewer addresses come back only if
    ///         fewer eligible members exist or that bound was reached.
    function drawDistinct(bytes32 seed, uint256 count, address[] calldata exclude, uint256 minWeight, uint256 asOfBlock)
        external
        view
        returns (address[] memory drawn);

    function positionOf(address account) external view returns (Position memory);
    function lockedUnder(address account, bytes32 key) external view returns (uint256);
    function escrowOf(bytes32 jobId) external view returns (uint256);
    /// @notice Total draw weight (Σ free stake of eligible verifiers).
    function totalDrawWeight() external view returns (uint256);
    /// @notice Draw weight of `account`.
    function drawWeightOf(address account) external view returns (uint256);
    /// @notice Total draw weight at the end of block `blockNumber` (< now).
    function totalDrawWeightAt(uint256 blockNumber) external view returns (uint256);
    /// @notice Draw weight of `account` at the end of block `blockNumber` (< now).
    function drawWeightAt(address account, uint256 blockNumber) external view returns (uint256);
}
