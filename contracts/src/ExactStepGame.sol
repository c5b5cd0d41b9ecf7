// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {ElementChecker} from "./ElementChecker.sol";
import {ElementCheck} from "./libraries/ElementCheck.sol";
import {ElementEval} from "./libraries/ElementEval.sol";
import {ElementOps} from "./libraries/ElementOps.sol";
import {StateReader} from "./StateReader.sol";
import {RFC9162} from "./libraries/RFC9162.sol";
import {TraceStructure} from "./libraries/TraceStructure.sol";

/// @title ExactStepGame
/// @notice The exact-mode game below one segment (DESIGN §8 "The game below a step"), played by a defender
///         (the solver, who committed the segment) and a challenger, on chess clocks, with no committee:
///         0. step descent over the segment's steps: the defender reveals the state root after the middle step of
///            the disputed range, the challenger agrees (the lie is later) or not (earlier), down to one step
///            whose pre-state root is agreed and whose post-state root is disputed;
///         1. the defender commits that step's trace root (one leaf per record, protocol/repro/trace.py);
///         2. record descent: the defender reveals a node's children, the challenger picks a side, down to one
///            record `t` (the first whose leaf differs from the challenger's own trace);
///         3. the defender opens record `t` (its structure proven against the program root, its floats against the
///            floats root, its hash against the leaf) and the commitment, dtype and shape of each tensor input:
///            an earlier record's output (that record's hash proven against the trace root), or a pre-state tensor
///            or external input (its entry proven against the inputs root);
///         4. the challenger names one output, and leaf descent over that output's commitment (its 32-byte leaves)
///            ends at one leaf, whose bytes the defender opens; the challenger names one element in it;
///         5. either party settles: the contract computes the element from its reads, each proven against its
///            input's commitment (ElementChecker). Equal to the defender's element: the defender wins; otherwise
///            the challenger.
///         A party that does not move before its clock runs out loses (`timeout`), so a defender that cannot open
///         what it committed, or a challenger whose element is not provably wrong, loses. The step's context — the
///         program root, the floats root and the inputs root — is agreed when the game opens (in the full dispute
///         it comes from the job order and the pre-state, DESIGN §8).
contract ExactStepGame {
    enum Phase {
        None,
        AwaitingStepRoot,
        AwaitingStepChoice,
        AwaitingTrace,
        AwaitingRecordReveal,
        AwaitingRecordChoice,
        AwaitingRecord,
        AwaitingOutput,
        AwaitingLeafReveal,
        AwaitingLeafChoice,
        AwaitingLeaf,
        AwaitingElement,
        AwaitingSettle,
        AwaitingPartial,
        AwaitingPartialChoice,
        AwaitingTermSettle,
        AwaitingTensor,
        AwaitingStateBytes,
        Ended
    }

    /// @notice What both parties agree about the step before it is played: the program root over the records'
    ///         structure hashes (`records` leaves) and the floats root over each record's float arguments (leaf entry
    ///         sha256 of the floats as 8-byte big-endian binary64). The inputs root, over the entries of the pre-state
    ///         tensors and external inputs the step reads, is the defender's (`commitTrace`): each pre-state entry a
    ///         record reads can be disputed against the agreed pre-state root (`disputeInput`).
    struct Context {
        bytes32 programRoot;
        bytes32 floatsRoot;
        uint64 records;
    }

    /// @notice The disputed segment: the state root before its first step (agreed), the one after its last step
    ///         (disputed), the job's step index of its first step and its number of steps.
    struct Segment {
        bytes32 preRoot;
        bytes32 postRoot;
        uint64 firstStep;
        uint64 steps;
    }

    /// @notice A bisection with no commitment over `[lo, hi)`: the value after `lo` is agreed, the one after `hi`
    ///         disputed; the defender reveals the value after `mid = (lo + hi) / 2` (`pending`), the challenger
    ///         agrees (`lo = mid`) or not (`hi = mid`), until `hi = lo + 1`. State roots over a segment's steps, float32
    ///         partial results (bits) over a fold's terms.
    struct Bisection {
        uint64 lo;
        uint64 hi;
        bytes32 agreed;
        bytes32 disputed;
        bytes32 pending;
        uint16 rounds;
    }

    struct Game {
        address defender;
        address challenger;
        address winner;
        Phase phase;
        uint48 defenderClock;
        uint48 challengerClock;
        uint48 lastMoveAt;
        uint16 recordRounds;
        uint16 leafRounds;
        Context ctx;
        bytes32 inputsRoot;
        uint64 inputs;
        Segment segment;
        Bisection steps; // the segment's steps: state roots; at its end step `segment.firstStep + steps.lo` is played
        bytes32 traceRoot;
        // the tree being descended (records, then one output's leaves)
        bytes32 node;
        bytes32 left;
        bytes32 right;
        uint64 lo;
        uint64 hi;
        // the opened record
        uint64 record;
        bytes32 opened; // keccak256 of the record's element context (ElementCheck.Claim minus the position)
        uint16 outputs;
        // the challenged output and element
        uint16 output;
        uint64 element;
        bytes32 leafBytes;
        uint8 leafLength;
        uint64 claimed;
        Bisection fold; // a long fold's terms: the float32 partial result after `lo` terms agreed, after `hi` disputed
        // a disputed pre-state input of the opened record (its index + 1) and where the state holds its bytes
        uint16 input;
        uint8 inputDtype;
        uint64 tensorStart;
        uint64 tensorBytes;
        uint64 chunkCount;
    }

    /// @notice One output of the opened record: its commitment, element count and dtype code.
    struct Output {
        bytes32 commitment;
        uint64 numel;
        uint8 dtype;
        uint64 terms; // a float32 fold's terms per element (ElementCheck.foldOf), else 0
        uint32 identity; // its partial result before the first term
    }

    /// @notice A fold element of more terms than this is settled one term at a time after a term descent.
    uint256 public constant DIRECT_TERMS = 16;

    /// @notice Record `t` as the defender opens it.
    struct RecordOpening {
        bytes structure; // STRUCTURE_ABI
        uint64[] floats;
        bytes32[] commitments;
        bytes32[] programPath; // the structure hash's audit path in the program root
        bytes32[] floatsPath; // the floats' audit path in the floats root
    }

    /// @notice One tensor input of the opened record. An earlier record's output: `data` is that record's structure,
    ///         with its floats and commitments, `path` its hash's audit path in the trace root. A pre-state tensor or
    ///         external: `data` is its entry `abi.encode(uint8 kind, uint32 index, string name, uint8 dtype,
    ///         uint32[] shape, bytes32 commitment)`, at `position` in the inputs root.
    struct InputOpening {
        bytes data;
        uint64[] floats;
        bytes32[] commitments;
        uint64 position;
        bytes32[] path;
    }

    uint256 public immutable clockBudget;
    ElementChecker public immutable checker;
    StateReader public immutable reader;
    uint256 public gameCount;
    mapping(uint256 => Game) private _games;
    mapping(uint256 => mapping(uint256 => Output)) private _outputs;
    /// @dev keccak256 of the inputs-root entry of each pre-state tensor input of the opened record, by input index.
    mapping(uint256 => mapping(uint256 => bytes32)) private _stateInputs;

    event GameOpened(
        uint256 indexed id, address indexed defender, address indexed challenger, Context ctx, Segment segment
    );
    event StepRootRevealed(uint256 indexed id, uint64 lo, uint64 hi, uint64 mid, bytes32 root);
    event StepChosen(uint256 indexed id, bool agree, uint64 lo, uint64 hi);
    event TraceCommitted(uint256 indexed id, bytes32 traceRoot, bytes32 inputsRoot, uint64 inputs);
    event InputDisputed(uint256 indexed id, uint16 input);
    event TensorOpened(uint256 indexed id, uint64 start, uint64 nbytes, uint64 leaves);
    event ChildrenRevealed(uint256 indexed id, uint64 lo, uint64 hi, bytes32 left, bytes32 right);
    event SideChosen(uint256 indexed id, bool right, uint64 lo, uint64 hi, bytes32 node);
    event RecordOpened(uint256 indexed id, uint64 record, bytes structure, uint64[] floats, bytes32[] commitments);
    event OutputChosen(uint256 indexed id, uint16 output, uint64 leaves);
    event LeafOpened(uint256 indexed id, uint64 leaf, bytes chunk);
    event ElementChosen(uint256 indexed id, uint64 element, uint64 claimed);
    event PartialRevealed(uint256 indexed id, uint64 lo, uint64 hi, uint64 mid, uint32 partialResult);
    event PartialChosen(uint256 indexed id, bool agree, uint64 lo, uint64 hi);
    event GameEnded(uint256 indexed id, address indexed winner, string reason);

    error BadClockBudget();
    error BadContext();
    error BadParties();
    error UnknownGame(uint256 id);
    error WrongPhase(uint256 id, Phase phase);
    error NotYourMove(address who);
    error ClockExpired(uint256 id);
    error ClockNotExpired(uint256 id, uint256 expiresAt);
    error ChildrenMismatch(bytes32 node);
    error RecordNotInProgram();
    error FloatsNotInContext();
    error RecordMismatch();
    error BadOpening(string why);
    error BadInput(uint256 k, string why);
    error BadOutputIndex(uint256 j);
    error LeafMismatch();
    error BadElement(uint256 o);
    error ContextMismatch();

    constructor(ElementChecker checker_, StateReader reader_, uint256 clockBudget_) {
        if (clockBudget_ == 0 || clockBudget_ > type(uint48).max) revert BadClockBudget();
        checker = checker_;
        reader = reader_;
        clockBudget = clockBudget_;
    }

    /// @notice Opens a game against `defender` over segment `seg`, each of whose steps has context `ctx`; the caller
    ///         is the challenger. The defender moves first: the state root after the segment's middle step
    ///         (`revealStepRoot`), or for a one-step segment the trace (`commitTrace`).
    function open(address defender, Context calldata ctx, Segment calldata seg) external returns (uint256 id) {
        if (defender == address(0) || defender == msg.sender) revert BadParties();
        if (ctx.records == 0 || ctx.programRoot == bytes32(0) || seg.steps == 0) revert BadContext();
        id = ++gameCount;
        Game storage g = _games[id];
        g.defender = defender;
        g.challenger = msg.sender;
        g.ctx = ctx;
        g.segment = seg;
        _bisect(g.steps, seg.steps, seg.preRoot, seg.postRoot);
        g.phase = seg.steps == 1 ? Phase.AwaitingTrace : Phase.AwaitingStepRoot;
        g.defenderClock = uint48(clockBudget);
        g.challengerClock = uint48(clockBudget);
        g.lastMoveAt = uint48(block.timestamp);
        emit GameOpened(id, defender, msg.sender, ctx, seg);
    }

    /// @notice The defender's state root after the middle step of the disputed range of steps.
    function revealStepRoot(uint256 id, bytes32 root) external {
        Game storage g = _move(id, Phase.AwaitingStepRoot, true);
        g.steps.pending = root;
        g.phase = Phase.AwaitingStepChoice;
        emit StepRootRevealed(id, g.steps.lo, g.steps.hi, _mid(g.steps), root);
    }

    /// @notice The challenger agrees with the revealed state root (the lie is in a later step) or not (in an earlier
    ///         one, or this). One step left: its trace is played (`commitTrace`).
    function chooseStep(uint256 id, bool agree) external {
        Game storage g = _move(id, Phase.AwaitingStepChoice, false);
        bool done = _choose(g.steps, agree, g.steps.pending);
        g.phase = done ? Phase.AwaitingTrace : Phase.AwaitingStepRoot;
        emit StepChosen(id, agree, g.steps.lo, g.steps.hi);
    }

    /// @notice The defender's trace root of the step (one leaf per record of the program) and its inputs root
    ///         (`inputs` entries: the pre-state tensors and external inputs the step reads).
    function commitTrace(uint256 id, bytes32 traceRoot, bytes32 inputsRoot, uint64 inputs) external {
        Game storage g = _move(id, Phase.AwaitingTrace, true);
        (g.traceRoot, g.inputsRoot, g.inputs) = (traceRoot, inputsRoot, inputs);
        _descend(g, traceRoot, g.ctx.records, Phase.AwaitingRecord, Phase.AwaitingRecordReveal);
        emit TraceCommitted(id, traceRoot, inputsRoot, inputs);
    }

    /// @notice The defender reveals the children of the node being descended (records or an output's leaves).
    function reveal(uint256 id, bytes32 left, bytes32 right) external {
        Game storage g = _game(id);
        Phase next = g.phase == Phase.AwaitingLeafReveal ? Phase.AwaitingLeafChoice : Phase.AwaitingRecordChoice;
        _move(id, g.phase == Phase.AwaitingLeafReveal ? Phase.AwaitingLeafReveal : Phase.AwaitingRecordReveal, true);
        // INVARIANT: the revealed children are the ones the committed node binds (collision resistance of SHA-256).
        if (RFC9162.hashNode(left, right) != g.node) revert ChildrenMismatch(g.node);
        (g.left, g.right, g.phase) = (left, right, next);
        emit ChildrenRevealed(id, g.lo, g.hi, left, right);
    }

    /// @notice The challenger picks the side it disputes.
    function choose(uint256 id, bool right) external {
        Game storage g = _game(id);
        bool leaves = g.phase == Phase.AwaitingLeafChoice;
        _move(id, leaves ? Phase.AwaitingLeafChoice : Phase.AwaitingRecordChoice, false);
        uint64 lo = g.lo;
        uint64 hi = g.hi;
        // INVARIANT: the split follows RFC 9162 (largest power of two below the width), as pymerkle builds the tree.
        uint64 mid = lo + uint64(RFC9162.splitPoint(hi - lo));
        if (right) (g.node, lo) = (g.right, mid);
        else (g.node, hi) = (g.left, mid);
        (g.lo, g.hi) = (lo, hi);
        if (leaves) {
            ++g.leafRounds;
            g.phase = hi - lo == 1 ? Phase.AwaitingLeaf : Phase.AwaitingLeafReveal;
        } else {
            ++g.recordRounds;
            g.phase = hi - lo == 1 ? Phase.AwaitingRecord : Phase.AwaitingRecordReveal;
        }
        emit SideChosen(id, right, lo, hi, g.node);
    }

    /// @notice The defender opens the record the descent reached, and the commitment of each of its tensor inputs.
    ///         An allocation (no elements; its commitment must be 32 zero bytes) ends the game at once: for the
    ///         defender if its commitments are zero (then the record is the program's, with nothing to dispute),
    ///         else for the challenger.
    function openRecord(uint256 id, RecordOpening calldata r, InputOpening[] calldata ins) external {
        Game storage g = _move(id, Phase.AwaitingRecord, true);
        uint64 t = g.lo;
        Context memory ctx = g.ctx;
        if (!RFC9162.verifyInclusion(
                ctx.programRoot, RFC9162.hashLeaf(sha256(r.structure)), t, ctx.records, r.programPath
            )) {
            revert RecordNotInProgram();
        }
        if (!RFC9162.verifyInclusion(
                ctx.floatsRoot, RFC9162.hashLeaf(_floatsHash(r.floats)), t, ctx.records, r.floatsPath
            )) {
            revert FloatsNotInContext();
        }
        if (RFC9162.hashLeaf(ElementCheck.recordHash(r.structure, r.floats, r.commitments)) != g.node) {
            revert RecordMismatch();
        }
        TraceStructure.Structure memory s = TraceStructure.decode(r.structure);
        if (r.commitments.length != s.shapes.length || r.floats.length != s.floats) revert BadOpening("counts");
        g.record = t;
        emit RecordOpened(id, t, r.structure, r.floats, r.commitments);
        if (ElementEval.evalKind(s.opcode) == ElementEval.UNDEFINED) {
            bool zero = true;
            for (uint256 j = 0; j < r.commitments.length; ++j) {
                zero = zero && r.commitments[j] == bytes32(0);
            }
            _end(id, g, zero ? g.defender : g.challenger, zero ? "allocation" : "allocation committed");
            return;
        }
        if (ins.length != s.inputs.length) revert BadOpening("inputs");
        uint32[][] memory inShapes = new uint32[][](ins.length);
        uint256[] memory inDtypes = new uint256[](ins.length);
        bytes32[] memory inCommitments = new bytes32[](ins.length);
        for (uint256 k = 0; k < ins.length; ++k) {
            (inCommitments[k], inShapes[k], inDtypes[k]) = _inputOf(g, t, s.inputs[k], ins[k], k);
            if (s.inputs[k].kind == TraceStructure.REF_STATE) _stateInputs[id][k] = keccak256(ins[k].data);
        }
        _storeOutputs(id, s, r.commitments, inShapes, inDtypes);
        // forge-lint: disable-next-line(unsafe-typecast)
        g.outputs = uint16(s.shapes.length); // ≤ the outputs of one ATen call, checked by the structure's encoding
        g.opened = _context(r.structure, r.floats, r.commitments, inShapes, inDtypes, inCommitments);
        g.phase = Phase.AwaitingOutput;
    }

    /// @notice The challenger names the output it disputes; the descent continues over its 32-byte leaves.
    function chooseOutput(uint256 id, uint16 j) external {
        Game storage g = _move(id, Phase.AwaitingOutput, false);
        if (j >= g.outputs) revert BadOutputIndex(j);
        Output memory out = _outputs[id][j];
        uint256 bytes_ = uint256(out.numel) * ElementOps.width(out.dtype) / 8;
        if (bytes_ == 0) revert BadOutputIndex(j);
        uint64 leaves = uint64((bytes_ + 31) / 32);
        g.output = j;
        _descend(g, out.commitment, leaves, Phase.AwaitingLeaf, Phase.AwaitingLeafReveal);
        emit OutputChosen(id, j, leaves);
    }

    /// @notice The challenger disputes tensor input `k` of the opened record, a pre-state tensor: its commitment in
    ///         the defender's inputs root is not the agreed pre-state's tensor of that name. The defender must show
    ///         where the state holds it (`openTensor`); then a leaf descent over the commitment ends at one leaf,
    ///         compared with the state's bytes (`settleInput`).
    function disputeInput(uint256 id, uint16 k) external {
        Game storage g = _move(id, Phase.AwaitingOutput, false);
        if (_stateInputs[id][k] == bytes32(0)) revert BadInput(k, "not a pre-state tensor");
        g.input = k + 1;
        g.phase = Phase.AwaitingTensor;
        emit InputDisputed(id, k);
    }

    /// @notice The defender opens the disputed input's entry (as in its inputs root) and the pre-state's manifest
    ///         entry of that tensor (StateReader); its dtype and shape must be the entry's.
    function openTensor(uint256 id, bytes calldata entry, StateReader.ManifestOpening calldata m) external {
        Game storage g = _move(id, Phase.AwaitingTensor, true);
        if (keccak256(entry) != _stateInputs[id][g.input - 1]) revert BadOpening("entry");
        (bytes32 commitment, StateReader.Tensor memory t) = reader.entryTensor(g.steps.agreed, entry, m);
        (g.inputDtype, g.tensorStart, g.tensorBytes, g.chunkCount) = (t.dtype, t.start, t.nbytes, t.chunkCount);
        uint64 leaves = (t.nbytes + 31) / 32;
        emit TensorOpened(id, t.start, t.nbytes, leaves);
        if (leaves == 0) {
            bool holds = commitment == sha256("");
            _end(id, g, holds ? g.defender : g.challenger, holds ? "input holds" : "input wrong");
            return;
        }
        _descend(g, commitment, leaves, Phase.AwaitingLeaf, Phase.AwaitingLeafReveal);
    }

    /// @notice Either party (the challenger's clock): the pre-state's bytes of the leaf the input's descent reached
    ///         (`c`: the state chunks holding them, each proven against the agreed pre-state root), float32 NaNs
    ///         canonical as in a commitment. Equal to the defender's leaf: the defender wins; else the challenger.
    function settleInput(uint256 id, StateReader.Chunks calldata c) external {
        Game storage g = _game(id);
        if (g.phase != Phase.AwaitingStateBytes) revert WrongPhase(id, g.phase);
        if (msg.sender == g.challenger) _spendClock(g, id, false);
        else if (msg.sender != g.defender) revert NotYourMove(msg.sender);
        uint256 start = g.tensorStart + uint256(g.lo) * 32;
        bool holds =
            reader.committedLeaf(g.steps.agreed, g.chunkCount, start, g.leafLength, g.inputDtype, c) == g.leafBytes;
        _end(id, g, holds ? g.defender : g.challenger, holds ? "input holds" : "input wrong");
    }

    /// @notice The defender opens the leaf the descent reached: its bytes (32, the last leaf fewer).
    function openLeaf(uint256 id, bytes calldata chunk) external {
        Game storage g = _move(id, Phase.AwaitingLeaf, true);
        Output memory out = _outputs[id][g.output];
        uint256 total = g.input != 0 ? g.tensorBytes : uint256(out.numel) * ElementOps.width(out.dtype) / 8;
        uint256 start = uint256(g.lo) * 32;
        uint256 length = total - start > 32 ? 32 : total - start;
        if (chunk.length != length || sha256(abi.encodePacked(bytes1(0x00), chunk)) != g.node) revert LeafMismatch();
        g.leafBytes = bytes32(chunk);
        // forge-lint: disable-next-line(unsafe-typecast)
        g.leafLength = uint8(length); // ≤ 32
        g.phase = g.input != 0 ? Phase.AwaitingStateBytes : Phase.AwaitingElement;
        emit LeafOpened(id, g.lo, chunk);
    }

    /// @notice The challenger names the element of the opened leaf it disputes (by its C-order position).
    function chooseElement(uint256 id, uint64 o) external {
        Game storage g = _move(id, Phase.AwaitingElement, false);
        Output memory out = _outputs[id][g.output];
        uint256 width = _elementBytes(out.dtype);
        if (o >= out.numel || (uint256(o) * width) / 32 != g.lo) revert BadElement(o);
        uint256 off = uint256(o) * width - uint256(g.lo) * 32;
        uint256 bits = 0;
        for (uint256 b = width; b > 0; --b) {
            bits = (bits << 8) | uint8(g.leafBytes[off + b - 1]);
        }
        g.element = o;
        // forge-lint: disable-next-line(unsafe-typecast)
        g.claimed = uint64(bits); // ≤ 8 bytes wide
        g.phase = Phase.AwaitingSettle;
        if (out.terms > DIRECT_TERMS) {
            _bisect(g.fold, out.terms, bytes32(uint256(out.identity)), bytes32(_canonical(bits))); // a float32
            g.phase = Phase.AwaitingPartial;
        }
        emit ElementChosen(id, o, uint64(bits));
    }

    /// @notice The defender's partial result of the fold element after the middle term of the disputed range.
    function revealPartial(uint256 id, uint32 partialResult) external {
        Game storage g = _move(id, Phase.AwaitingPartial, true);
        g.fold.pending = bytes32(_canonical(partialResult));
        g.phase = Phase.AwaitingPartialChoice;
        emit PartialRevealed(id, g.fold.lo, g.fold.hi, _mid(g.fold), partialResult);
    }

    /// @notice The challenger agrees with the revealed partial result (the dispute is in the upper half) or not (in
    ///         the lower half). One term left: the term is settled (`settleTerm`).
    function choosePartial(uint256 id, bool agree) external {
        Game storage g = _move(id, Phase.AwaitingPartialChoice, false);
        bool done = _choose(g.fold, agree, g.fold.pending);
        g.phase = done ? Phase.AwaitingTermSettle : Phase.AwaitingPartial;
        emit PartialChosen(id, agree, g.fold.lo, g.fold.hi);
    }

    /// @notice Either party: term `fold.lo` of the fold element recomputed from the agreed partial result before it
    ///         and the term's proven reads (`c`: the opened record's context, the element, the term's reads only).
    ///         Equal to the defender's partial result after it: the defender wins; else the challenger. The
    ///         challenger's move, as in `settle`.
    function settleTerm(uint256 id, ElementCheck.Claim calldata c) external {
        Game storage g = _settling(id, Phase.AwaitingTermSettle, c);
        Bisection memory b = g.fold;
        // forge-lint: disable-next-line(unsafe-typecast)
        bool holds = checker.foldTerm(c, b.lo, uint32(uint256(b.agreed))) == uint256(b.disputed); // float32 bits
        _end(id, g, holds ? g.defender : g.challenger, holds ? "term holds" : "term wrong");
    }

    /// @notice Either party: the element computed from its proven reads (`c` is the opened record's context, the
    ///         chosen output and element, and the reads in the order the record reads them; its output proof is not
    ///         used). Equal to the defender's element (a float32 NaN counted canonical): the defender wins; else the
    ///         challenger. It is the challenger's move: if no valid settlement is made before the challenger's clock
    ///         runs out (a read that cannot be proven, an element the semantics leave undefined), the defender wins.
    function settle(uint256 id, ElementCheck.Claim calldata c) external {
        Game storage g = _settling(id, Phase.AwaitingSettle, c);
        (uint256 computed, uint256 dtype, uint256 numel) = checker.compute(c);
        Output memory out = _outputs[id][g.output];
        if (dtype != out.dtype || numel != out.numel) revert ContextMismatch(); // the opened record's, by the context
        uint256 claimed = dtype == 0 ? _canonical(g.claimed) : g.claimed;
        bool holds = computed == claimed;
        _end(id, g, holds ? g.defender : g.challenger, holds ? "element holds" : "element wrong");
    }

    /// @dev A settlement's checks: the phase, the sender (the challenger's clock is spent; the defender may settle
    ///      too) and that `c` is the opened record's context at the chosen element.
    function _settling(uint256 id, Phase phase, ElementCheck.Claim calldata c) private returns (Game storage g) {
        g = _game(id);
        if (g.phase != phase) revert WrongPhase(id, g.phase);
        if (msg.sender == g.challenger) _spendClock(g, id, false);
        else if (msg.sender != g.defender) revert NotYourMove(msg.sender);
        if (c.j != g.output || c.o != g.element) revert ContextMismatch();
        if (_context(c.structure, c.floats, c.outCommitments, c.inShapes, c.inDtypes, c.inCommitments) != g.opened) {
            revert ContextMismatch();
        }
    }

    function _canonical(uint256 bits) private pure returns (uint256) {
        return bits & 0x7fffffff > 0x7f800000 ? 0x7fc00000 : bits;
    }

    /// @notice Ends the game for the other party when the party to move has run out of its clock.
    function timeout(uint256 id) external {
        Game storage g = _game(id);
        if (g.phase == Phase.Ended) revert WrongPhase(id, g.phase);
        bool defenderToMove = _defenderMoves(g.phase);
        uint256 expiresAt = uint256(g.lastMoveAt) + (defenderToMove ? g.defenderClock : g.challengerClock);
        if (block.timestamp <= expiresAt) revert ClockNotExpired(id, expiresAt);
        _end(id, g, defenderToMove ? g.challenger : g.defender, "timeout");
    }

    function getGame(uint256 id) external view returns (Game memory) {
        return _game(id);
    }

    function _floatsHash(uint64[] calldata floats) private pure returns (bytes32) {
        return sha256(ElementCheck.packFloats(floats));
    }

    /// @dev The commitment, shape and dtype of tensor input `k` (reference `ref`) of record `t`, from its opening.
    function _inputOf(Game storage g, uint64 t, TraceStructure.Ref memory ref, InputOpening calldata x, uint256 k)
        private
        view
        returns (bytes32, uint32[] memory, uint256)
    {
        if (ref.kind == TraceStructure.REF_OUTPUT) {
            if (ref.index >= t) revert BadInput(k, "not an earlier record");
            bytes32 leaf = RFC9162.hashLeaf(ElementCheck.recordHash(x.data, x.floats, x.commitments));
            if (!RFC9162.verifyInclusion(g.traceRoot, leaf, ref.index, g.ctx.records, x.path)) {
                revert BadInput(k, "record not in trace");
            }
            TraceStructure.Structure memory s = TraceStructure.decode(x.data);
            if (ref.output >= s.shapes.length || ref.output >= x.commitments.length) revert BadInput(k, "output");
            return (x.commitments[ref.output], s.shapes[ref.output], s.dtypes[ref.output]);
        }
        if (!RFC9162.verifyInclusion(g.inputsRoot, RFC9162.hashLeaf(sha256(x.data)), x.position, g.inputs, x.path)) {
            revert BadInput(k, "entry not in inputs");
        }
        (uint8 kind, uint32 index, string memory name, uint8 dtype, uint32[] memory shape, bytes32 commitment) =
            abi.decode(x.data, (uint8, uint32, string, uint8, uint32[], bytes32));
        bool same = kind == ref.kind
            && (ref.kind == TraceStructure.REF_STATE
                    ? keccak256(bytes(name)) == keccak256(bytes(ref.name))
                    : index == ref.index);
        if (!same) revert BadInput(k, "another entry");
        return (commitment, shape, dtype);
    }

    function _storeOutputs(
        uint256 id,
        TraceStructure.Structure memory s,
        bytes32[] calldata commitments,
        uint32[][] memory inShapes,
        uint256[] memory inDtypes
    ) private {
        for (uint256 j = 0; j < s.shapes.length; ++j) {
            ElementCheck.Fold memory f = ElementCheck.foldOf(s, inShapes, inDtypes, j);
            Output storage out = _outputs[id][j];
            (out.commitment, out.numel, out.dtype) =
            (commitments[j], uint64(TraceStructure.numel(s.shapes[j])), s.dtypes[j]);
            // forge-lint: disable-next-line(unsafe-typecast)
            if (f.isFold) (out.terms, out.identity) = (uint64(f.terms), uint32(f.identity)); // a dimension, a float32
        }
    }

    function _context(
        bytes calldata structure,
        uint64[] calldata floats,
        bytes32[] calldata commitments,
        uint32[][] memory inShapes,
        uint256[] memory inDtypes,
        bytes32[] memory inCommitments
    ) private pure returns (bytes32) {
        return keccak256(abi.encode(structure, floats, commitments, inShapes, inDtypes, inCommitments));
    }

    function _elementBytes(uint8 dtype) private pure returns (uint256) {
        return ElementOps.width(dtype) / 8;
    }

    function _bisect(Bisection storage b, uint64 size, bytes32 agreed, bytes32 disputed) private {
        (b.lo, b.hi, b.agreed, b.disputed) = (0, size, agreed, disputed);
    }

    function _mid(Bisection storage b) private view returns (uint64) {
        return (b.lo + b.hi) / 2;
    }

    /// @dev The challenger's answer to the revealed middle value; true when one element of the range is left.
    function _choose(Bisection storage b, bool agree, bytes32 value) private returns (bool) {
        uint64 mid = _mid(b);
        if (agree) (b.lo, b.agreed) = (mid, value);
        else (b.hi, b.disputed) = (mid, value);
        ++b.rounds;
        return b.hi - b.lo == 1;
    }

    function _descend(Game storage g, bytes32 root, uint64 size, Phase atLeaf, Phase atNode) private {
        (g.node, g.lo, g.hi) = (root, 0, size);
        g.phase = size == 1 ? atLeaf : atNode;
    }

    function _end(uint256 id, Game storage g, address winner, string memory reason) private {
        g.winner = winner;
        g.phase = Phase.Ended;
        emit GameEnded(id, winner, reason);
    }

    /// @dev Checks the phase and the mover, and spends the mover's clock.
    function _move(uint256 id, Phase expected, bool defender) private returns (Game storage g) {
        g = _game(id);
        if (g.phase != expected) revert WrongPhase(id, g.phase);
        if (msg.sender != (defender ? g.defender : g.challenger)) revert NotYourMove(msg.sender);
        _spendClock(g, id, defender);
    }

    function _spendClock(Game storage g, uint256 id, bool defender) private {
        uint256 elapsed = block.timestamp - g.lastMoveAt;
        uint256 left = defender ? g.defenderClock : g.challengerClock;
        if (elapsed > left) revert ClockExpired(id);
        // forge-lint: disable-next-line(unsafe-typecast)
        if (defender) g.defenderClock = uint48(left - elapsed);
        // forge-lint: disable-next-line(unsafe-typecast)
        else g.challengerClock = uint48(left - elapsed);
        g.lastMoveAt = uint48(block.timestamp);
    }

    function _defenderMoves(Phase p) private pure returns (bool) {
        return p == Phase.AwaitingStepRoot || p == Phase.AwaitingTrace || p == Phase.AwaitingRecordReveal
            || p == Phase.AwaitingRecord || p == Phase.AwaitingLeafReveal || p == Phase.AwaitingLeaf
            || p == Phase.AwaitingPartial || p == Phase.AwaitingTensor;
    }

    function _game(uint256 id) private view returns (Game storage g) {
        g = _games[id];
        if (g.phase == Phase.None) revert UnknownGame(id);
    }
}
