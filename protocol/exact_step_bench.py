"""The game below a step at an example's real size (``veritrain bench exact-game``): one optimizer step of the
example traced for its commitments only, a solver that lies by one ulp — in one element of one record
(``element``), or in one element of the first parameter the step reads, computing the step honestly from that
(``input``) — the honest challenger, both recomputing the values one record needs instead of keeping the whole step
(DESIGN §8), played on a fresh anvil one transaction per move: rounds and gas by phase, and the largest
transaction."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

import torch

from protocol.anvil import Anvil, dev_accounts
from protocol.exact_step_game import Challenger, Defender, deploy_game, lie, play, segment, send_move, step_context
from protocol.repro.trace import UNDEFINED, trace_step
from protocol.state import deserialize, serialize_bytes
from protocol.state_reader import StateOpener

CLOCK = 3600


def _target(trace: Any, where: str) -> int:
    """The record lied about: the last (``late``) or middle (``middle``) float32 multiplication with elements."""
    muls = [r.index for r in trace.records if r.op == "aten.mul.Tensor" and r.outputs[0][0] == "torch.float32"
            and r.commitments[0] != UNDEFINED and torch.Size(r.outputs[0][1]).numel() > 0]  # fmt: skip
    if not muls:
        raise ValueError("the step has no float32 multiplication to lie about")
    return muls[-1] if where == "late" else muls[len(muls) // 2]


def exact_game_benchmark(example: str = "tiny_lm", where: str = "late", lie_in: str = "element") -> dict[str, Any]:
    from protocol.engine.data import load_dataset
    from protocol.engine.examples import load_example
    from protocol.engine.runner import Trainer

    spec = load_example(example)
    ds = load_dataset(spec.dataset)
    trainer = Trainer(spec, ds)
    trainer.init()
    blob = serialize_bytes(trainer.state())
    t0 = time.perf_counter()
    trace = trace_step(trainer, keep_values=False)
    trace_s = time.perf_counter() - t0
    pre = deserialize(blob)
    ctx = step_context(trace, pre_state=pre.tensors)
    recomputed: list[float] = []

    def recomputer(state_blob: bytes) -> Callable[[Collection[str]], Mapping[str, torch.Tensor]]:
        def recompute(refs: Collection[str]) -> Mapping[str, torch.Tensor]:
            t1 = time.perf_counter()
            again = Trainer(spec, ds)
            again.load(deserialize(state_blob))
            values = trace_step(again, keep_values=refs).values
            recomputed.append(time.perf_counter() - t1)
            return values

        return recompute

    recompute = recomputer(blob)
    if lie_in == "input":  # the first parameter a record reads, one ulp off in its middle element
        name = next(x[2:] for r in trace.records for x in r.inputs if x.startswith("s:param/"))
        doctored = deserialize(blob)
        w = doctored.tensors[name]
        w.view(-1).view(torch.int32)[w.numel() // 2] ^= 1
        bad = serialize_bytes(doctored)
        again = Trainer(spec, ds)
        again.load(deserialize(bad))
        theirs = trace_step(again, keep_values=False)
        liar = Defender(theirs, step_context(theirs, pre_state=deserialize(bad).tensors), pre_state=blob,
                        recompute=recomputer(bad))  # fmt: skip
        index, o = -1, w.numel() // 2
    else:
        index = _target(trace, where)
        mine = dataclasses.replace(trace, values={})
        mine.values.update(recompute([f"r{index}.0"]))
        o = mine.values[f"r{index}.0"].numel() // 2
        liar = Defender(lie(mine, index, 0, o), ctx, pre_state=blob, recompute=recompute)
    honest = Challenger(dataclasses.replace(trace, values={}), ctx, pre_state=blob, recompute=recompute)
    with Anvil() as anvil:
        w3 = anvil.web3()
        accounts = dev_accounts()
        game = deploy_game(w3, accounts[0], CLOCK)
        seg = segment(StateOpener(blob).root(), b"\x02" * 32, 0, 1)
        receipt = send_move(w3, accounts[2], game.functions.open(accounts[1].address, ctx.as_tuple(), seg))
        gid = game.events.GameOpened().process_receipt(receipt)[0]["args"]["id"]
        t2 = time.perf_counter()
        out = play(w3, game, gid, liar, honest, accounts[1], accounts[2])
        play_s = time.perf_counter() - t2
    return {
        "example": example,
        "records": len(trace.records),
        "lie": lie_in,
        "lied_record": out.record if index < 0 else index,
        "lied_op": trace.records[out.record if index < 0 and out.record is not None else index].op,
        "lied_input": out.input,
        "winner": out.winner,
        "reason": out.reason,
        "rounds": {"record": out.record_rounds, "leaf": out.leaf_rounds, "fold": out.fold_rounds},
        "element": o,
        "gas_by_phase": out.phase_gas,
        "gas_total": sum(out.gas.values()),
        "max_tx_gas": out.max_tx_gas,
        "trace_s": round(trace_s, 1),
        "recompute_s": [round(x, 1) for x in recomputed],
        "play_s": round(play_s, 1),
    }
