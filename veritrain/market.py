"""What a user (submitter) and a staker do, as a library: the ``veritrain job …`` and ``veritrain stake …``
commands and the demo call these.

* :func:`connect` resolves the key (``--key`` / ``--key-file`` / ``$VERITRAIN_KEY``, or ``--role`` for a dev
  account of the local devnet), the RPC URL, the deployment and the marketplace API URL.
* :func:`prepare_spec` validates a spec (a file or an example name), attaches the dataset and fills in
  ``init_state_root`` (C_init) by building the initial state with the engine.
* :func:`submit_job` uploads spec + dataset to the API's blob store, signs the ``JobOrder`` (EIP-712) and
  POSTs it; :func:`wait_for_bid` and :func:`accept_bid` take a bid (the API's accept helper gives the call data,
  which is checked and sent from the user's key through :class:`~protocol.chain.ChainClient`);
  :func:`wait_outcome` follows the job to Finalized / Slashed / Expired (calling ``finalize`` once the audit
  window is over); :func:`fetch_model` downloads the final state and checks it against the committed root.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import httpx
from eth_account.signers.local import LocalAccount
from eth_utils import is_address, to_checksum_address

from protocol import staking, tokens
from protocol.chain import ChainClient
from protocol.constants import FINAL_JOB_STATES, JobState
from protocol.deploy import Deployment, load_deployment
from protocol.eip712 import Domain, JobOrder
from protocol.errors import VeritrainError
from protocol.spec import JobSpec, WeightsInit, parse_spec

DEFAULT_RPC = "http://127.0.0.1:8545"
DEFAULT_API = "http://127.0.0.1:8000"


class UserError(VeritrainError, ValueError):
    """A user command cannot go on; the message says why and what to do."""


def parse_tokens(text: str | int | Decimal, what: str = "amount") -> int:
    """:func:`protocol.tokens.parse_tokens`, failing as a :class:`UserError`."""
    try:
        return tokens.parse_tokens(text, what)
    except tokens.TokenAmountError as exc:
        raise UserError(str(exc)) from None


# ---------------------------------------------------------------------------------------------- connection


@dataclass
class User:
    """A connected user: key, chain client, API client."""

    account: LocalAccount | None
    rpc_url: str
    deployment: Deployment
    api_url: str
    chain: ChainClient
    api: httpx.Client
    home: Path | None = None

    @property
    def address(self) -> str:
        if self.account is None:
            raise UserError("this command signs: pass --key, --key-file, --role or set VERITRAIN_KEY")
        return self.account.address

    @property
    def domain(self) -> Domain:
        return Domain(self.deployment.chain_id, self.deployment.address_of("JobMarket"))

    def close(self) -> None:
        self.api.close()

    def __enter__(self) -> User:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------------- API

    def api_request(self, method: str, path: str, **kw: Any) -> Any:
        """One API call; a connection failure or a 4xx/5xx raises :class:`UserError` with the API's reason."""
        try:
            r = self.api.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise UserError(
                f"the marketplace API at {self.api_url} does not answer ({exc.__class__.__name__}: {exc}); start it "
                "with `veritrain api` (or `veritrain devnet up`, which starts one), or pass --api URL"
            ) from None
        if r.status_code >= 400:
            try:
                body = r.json()
                reason = f"{body.get('error')}: {body.get('detail')}"
            except ValueError:
                reason = r.text[:300]
            raise UserError(f"{method} {path} was refused by the API ({r.status_code} {reason})")
        return r.json() if r.content else None


def connect(
    *,
    key: str | None = None,
    key_file: str | os.PathLike[str] | None = None,
    role: str | None = None,
    rpc: str | None = None,
    deployment: str | os.PathLike[str] | None = None,
    api: str | None = None,
    home: str | os.PathLike[str] | None = None,
    need_key: bool = True,
) -> User:
    """Resolves the user's key and endpoints. A devnet in ``home`` (``$VERITRAIN_HOME``, ``./.veritrain``)
    supplies the defaults for RPC, deployment and API; ``role`` picks one of its dev accounts."""
    from protocol.node import load_account
    from veritrain.devnet import DevnetError, _read, veritrain_home

    home_path = veritrain_home(home)
    devnet = None
    try:
        devnet = _read(home_path)
    except DevnetError:
        devnet = None
    account = None
    if role is not None:
        if devnet is None:
            raise UserError(f"--role {role} needs a devnet in {home_path}: run `veritrain devnet up` first")
        if key or key_file:
            raise UserError("pass either --role or --key/--key-file, not both")
        account = devnet.account(role)
    elif key or key_file or os.environ.get("VERITRAIN_KEY") or need_key:
        account = load_account(key, key_file)
    rpc_url = rpc or (devnet.rpc_url if devnet else DEFAULT_RPC)
    dep_path = Path(deployment) if deployment else home_path / "deployment.json"
    if not dep_path.exists():
        raise UserError(
            f"no deployment file at {dep_path}: start a local devnet with `veritrain devnet up`, or pass "
            "--deployment PATH for another network"
        )
    dep = load_deployment(dep_path)
    api_url = (api or (devnet.api_url if devnet and devnet.api_url else None) or DEFAULT_API).rstrip("/")
    chain = ChainClient(rpc_url, dep, account, retries=2, poll_interval=0.1)
    return User(
        account=account,
        rpc_url=rpc_url,
        deployment=dep,
        api_url=api_url,
        chain=chain,
        api=httpx.Client(base_url=api_url, timeout=30.0),
        home=home_path,
    )


# ---------------------------------------------------------------------------------------------- specs


def load_spec_source(source: str | os.PathLike[str]) -> JobSpec:
    """A spec from a JSON file, or an example name (``mlp_digits``, ``cnn_digits``, ``tiny_lm``)."""
    from protocol.engine.examples import EXAMPLES, load_example

    text = str(source)
    if text in EXAMPLES:
        return load_example(text)
    path = Path(text)
    if not path.is_file():
        raise UserError(f"{text} is neither a spec file nor an example ({', '.join(EXAMPLES)})")
    return parse_spec(path.read_bytes())


class PreparedJob(NamedTuple):
    """A spec ready to sign and the blobs to upload with it."""

    spec: JobSpec
    dataset: bytes
    #: The canonical weights state a fine-tuning spec starts from (``init.kind == "weights"``), else None.
    weights: bytes | None = None


def prepare_spec(
    spec: JobSpec,
    *,
    dataset: str | os.PathLike[str] | None = None,
    dataset_format: str | None = None,
    total_steps: int | None = None,
    checkpoint_interval: int | None = None,
    seed: int | None = None,
    weights: str | os.PathLike[str] | None = None,
) -> PreparedJob:
    """The spec ready to sign (schedule/seed overrides applied, the dataset file's digest in it, for a
    fine-tuning spec the weights' state root in ``init``, C_init filled in), the dataset's bytes and the
    weights state's bytes (to upload). ``weights`` is any file :mod:`protocol.engine.weights` reads."""
    from protocol.engine.data import builtin_bytes, load_dataset, sha256_hex
    from protocol.engine.runner import initial_state
    from protocol.state import serialize_bytes, state_root

    doc = spec.model_dump(mode="json")
    if total_steps is not None or checkpoint_interval is not None:
        doc["total_steps"] = total_steps or spec.total_steps
        doc["checkpoint_interval"] = checkpoint_interval or spec.checkpoint_interval
    if seed is not None:
        doc["seed"] = seed
    data_path = None
    if dataset is not None:
        data_path = Path(dataset)
        if not data_path.is_file():
            raise UserError(f"dataset file {data_path} does not exist")
        fmt = dataset_format or data_path.suffix.lstrip(".").lower()
        if fmt not in ("npz", "csv", "text", "txt"):
            raise UserError(f"cannot tell the dataset format of {data_path}: pass --dataset-format npz|csv|text")
        if fmt not in ("npz", "csv", "text", "txt", "parquet"):
            raise UserError(
                f"cannot tell the dataset format of {data_path}: pass --dataset-format npz|csv|text|parquet"
            )
        raw = data_path.read_bytes()
        ref = {
            "format": "text" if fmt == "txt" else fmt,
            "digest": sha256_hex(raw),
            "holdout_fraction": spec.dataset.holdout_fraction,
        }
        if spec.dataset.format == ref["format"]:  # the spec declared how to read this kind of file: keep it
            ref.update(
                {k: v for k, v in doc["dataset"].items() if k in ("columns", "tokenizer")}  # declared schema
            )
        doc["dataset"] = ref
    weights_state = None
    if weights is not None:
        from protocol.engine.weights import import_weights

        weights_state = import_weights(weights)
        init = doc.get("init") or {}
        doc["init"] = {
            "kind": "weights",
            "state_root": "0x" + state_root(weights_state).hex(),
            "fresh": init.get("fresh", []) if init.get("kind") == "weights" else [],
        }
        doc["version"] = 2
    doc["init_state_root"] = None
    spec = parse_spec(doc)
    if spec.dataset.format == "builtin":
        raw = builtin_bytes(spec.dataset.builtin or "")
    if isinstance(spec.init, WeightsInit) and weights_state is None:
        raise UserError(
            f"the spec starts from given weights ({spec.init.state_root}): pass the file with --weights "
            "(a .safetensors, a PyTorch state_dict or the .vts of `veritrain state import`)"
        )
    ds = load_dataset(spec.dataset, path=data_path)
    init_state = initial_state(spec, ds, weights_state)
    blob = serialize_bytes(weights_state) if weights_state is not None else None
    return PreparedJob(spec.with_init_root(state_root(init_state)), raw, blob)


# ---------------------------------------------------------------------------------------------- jobs


def _hex(b: bytes) -> str:
    return "0x" + bytes(b).hex()


@dataclass
class Submitted:
    job_id: str
    order: JobOrder
    spec: JobSpec


def upload_blob(user: User, data: bytes) -> str:
    return str(user.api_request("POST", "/blobs", content=data)["address"])


def submit_job(
    user: User,
    spec: JobSpec,
    dataset_bytes: bytes,
    *,
    max_price: int,
    deadline_s: int = 3600,
    nonce: int | None = None,
    weights: bytes | None = None,
) -> Submitted:
    """Uploads dataset (and the initial weights state of a fine-tuning spec) + spec, signs the JobOrder and
    POSTs it; returns the job id (the order's digest)."""
    if spec.init_state_root is None:
        raise UserError("the spec has no init_state_root: run it through prepare_spec first")
    if max_price <= 0:
        raise UserError("the price must be positive (--price TOKENS)")
    dataset_addr = upload_blob(user, dataset_bytes)
    if dataset_addr != spec.dataset.digest:
        raise UserError(f"the API stored the dataset as {dataset_addr}, but the spec names {spec.dataset.digest}")
    if isinstance(spec.init, WeightsInit):
        if weights is None:
            raise UserError(f"the spec starts from weights {spec.init.state_root}: give their state bytes")
        stored = user.api_request(
            "POST", "/blobs", params={"kind": "state", "expected": spec.init.state_root}, content=weights
        )["address"]
        if stored != spec.init.state_root:
            raise UserError(f"the API stored the weights as {stored}, but the spec names {spec.init.state_root}")
    spec_addr = upload_blob(user, spec.canonical_json())
    now = int(user.chain.w3.eth.get_block("latest")["timestamp"])
    order = JobOrder(
        submitter=user.address,
        specHash=spec.spec_hash(),
        datasetHash=bytes.fromhex(spec.dataset.digest[2:]),
        initStateRoot=bytes.fromhex(spec.init_state_root[2:]),
        totalSteps=spec.total_steps,
        checkpointInterval=spec.checkpoint_interval,
        maxPrice=max_price,
        deadline=now + deadline_s,
        nonce=nonce if nonce is not None else time.time_ns(),
    )
    assert _hex(order.specHash) == spec_addr
    sig = order.sign(user.domain, user.account)
    body = {
        "order": order.as_json(),
        "signature": _hex(sig),
        "chain_id": user.deployment.chain_id,
        "spec": spec.model_dump(mode="json"),
    }
    job = user.api_request("POST", "/jobs", json=body)
    job_id = _hex(order.digest(user.domain))
    if job["job_id"] != job_id:
        raise UserError(f"the API computed job id {job['job_id']}, this client {job_id}: different deployments?")
    return Submitted(job_id=job_id, order=order, spec=spec)


def bids(user: User, job_id: str, feasible_only: bool = True) -> list[dict[str, Any]]:
    return list(
        user.api_request("GET", f"/jobs/{job_id}/bids", params={"feasible_only": str(feasible_only).lower()})["items"]
    )


def wait_for_bid(
    user: User,
    job_id: str,
    *,
    solver: str | None = None,
    timeout: float = 120.0,
    poll: float = 0.5,
    on_poll: Callable[[list[dict[str, Any]]], None] | None = None,
) -> dict[str, Any]:
    """The best feasible bid (or ``solver``'s) once one is there; :class:`UserError` after ``timeout``."""
    want = to_checksum_address(solver) if solver else None
    deadline = time.monotonic() + timeout
    while True:
        items = bids(user, job_id)
        if on_poll is not None:
            on_poll(items)
        chosen = next((b for b in items if want is None or to_checksum_address(b["bid"]["solver"]) == want), None)
        if chosen is not None:
            return chosen
        if time.monotonic() > deadline:
            who = f" from {want}" if want else ""
            raise UserError(
                f"no feasible bid{who} on job {job_id} within {timeout:.0f}s: is a solver running "
                "(`veritrain solver …`) and staked? The order stays posted; accept later with "
                f"`veritrain job accept {job_id}`"
            )
        time.sleep(poll)


def accept_bid(user: User, job_id: str, bid_hash: str | None = None) -> dict[str, Any]:
    """Takes a bid: approves the price for escrow, then sends ``acceptBid`` with the call data from the API's
    accept helper (checked: our JobMarket, our address as sender, this job). Returns a summary."""
    call = user.api_request("GET", f"/jobs/{job_id}/accept-call", params={"bid": bid_hash} if bid_hash else None)
    market = user.chain.job_market
    if to_checksum_address(call["to"]) != market.address or call["job_id"] != job_id:
        raise UserError(f"the API's accept call targets {call['to']} / job {call['job_id']}, not ours: wrong --api?")
    if to_checksum_address(call["sender"]) != user.address:
        raise UserError(f"job {job_id} was submitted by {call['sender']}, not by {user.address}: use that key")
    fn, args = market.decode_function_input(call["data"])
    if fn.fn_name != "acceptBid":
        raise UserError(f"the API returned a call to {fn.fn_name}, expected acceptBid")
    price = int(call["price"])
    stake_manager = user.chain.stake_manager.address
    allowance = user.chain.call(user.chain.token.functions.allowance(user.address, stake_manager))
    if allowance < price:
        user.chain.transact(user.chain.token.functions.approve(stake_manager, price))
    receipt = user.chain.transact(market.functions.acceptBid(**args))
    bid = args["bid"]
    return {
        "job_id": job_id,
        "bid_hash": call["bid_hash"],
        "solver": to_checksum_address(bid["solver"] if isinstance(bid, dict) else bid[0]),
        "price": price,
        "tx": _hex(receipt["transactionHash"]),
        "gas": int(receipt["gasUsed"]),
    }


def chain_job(user: User, job_id: str) -> Any:
    return user.chain.call(user.chain.job_market.functions.getJob(bytes.fromhex(job_id.removeprefix("0x"))))


def job_summary(user: User, job_id: str) -> dict[str, Any]:
    """The job as the chain and the API see it."""
    _check_job_id(job_id)
    job = chain_job(user, job_id)
    out: dict[str, Any] = {"job_id": job_id, "state": JobState(job.state).name.lower()}
    if job.state != JobState.NONE:
        out["chain"] = {
            "submitter": job.submitter,
            "solver": job.solver,
            "price": str(job.price),
            "stake": str(job.stake),
            "deadline": int(job.deadline),
            "num_leaves": int(job.numLeaves),
            "trajectory_root": _hex(job.trajectoryRoot),
            "final_state_root": _hex(job.finalStateRoot),
            "audit_end": int(job.auditEnd),
        }
    try:
        api = user.api_request("GET", f"/jobs/{job_id}")
    except UserError as exc:
        out["api_error"] = str(exc)
    else:
        out["api"] = {
            "status": api["status"],
            "bids": len(api.get("bids") or []),
            "audit": api.get("audit"),
            "disputes": api.get("disputes"),
            "trajectory": api.get("trajectory"),
        }
        try:
            out["metrics"] = user.api_request("GET", f"/jobs/{job_id}/metrics")["points"]
        except UserError:
            out["metrics"] = []
    if job.state == JobState.NONE and "api" not in out:
        raise UserError(f"no job {job_id} on chain {user.deployment.chain_id} nor at {user.api_url}")
    return out


def _check_job_id(job_id: str) -> None:
    h = job_id.removeprefix("0x")
    if len(h) != 64 or any(c not in "0123456789abcdefABCDEF" for c in h):
        raise UserError(f"{job_id!r} is not a job id (0x + 64 hex digits)")


def wait_outcome(
    user: User,
    job_id: str,
    *,
    timeout: float = 1800.0,
    poll: float = 1.0,
    finalize: bool = True,
    on_state: Callable[[JobState, Any], None] | None = None,
) -> Any:
    """Follows the job until Finalized, Slashed or Expired; calls ``finalize`` (anyone may) once the audit window
    has passed, and ``expire`` once a matched job's deadline passed. Returns the final on-chain job."""
    _check_job_id(job_id)
    deadline = time.monotonic() + timeout
    last = None
    jid = bytes.fromhex(job_id.removeprefix("0x"))
    market = user.chain.job_market
    while True:
        job = chain_job(user, job_id)
        state = JobState(job.state)
        if state != last and on_state is not None:
            on_state(state, job)
        last = state
        if state in FINAL_JOB_STATES:
            return job
        now = int(user.chain.w3.eth.get_block("latest")["timestamp"])
        if finalize and user.account is not None:
            try:
                if state == JobState.COMMITTED and job.auditEnd and now >= job.auditEnd:
                    user.chain.transact(market.functions.finalize(jid))
                    continue
                if state == JobState.MATCHED and now > job.deadline:
                    user.chain.transact(market.functions.expire(jid))
                    continue
            except VeritrainError:
                pass  # someone else (the solver) got there first, or a dispute opened: look again
        if time.monotonic() > deadline:
            raise UserError(f"job {job_id} is still {state.name.lower()} after {timeout:.0f}s")
        time.sleep(poll)


def cancel_order(user: User, job_id: str | None = None, nonce: int | None = None) -> dict[str, Any]:
    """Cancels an order's nonce on-chain (``JobMarket.cancelNonce``): no solver can be matched to it after."""
    if (job_id is None) == (nonce is None):
        raise UserError("give a job id or --nonce N")
    if job_id is not None:
        _check_job_id(job_id)
        job = user.api_request("GET", f"/jobs/{job_id}")
        if not job.get("order"):
            raise UserError(f"the API does not hold the order of job {job_id}; pass --nonce N instead")
        if to_checksum_address(job["order"]["submitter"]) != user.address:
            raise UserError(f"job {job_id} was submitted by {job['order']['submitter']}, not by {user.address}")
        if job["status"] != "open":
            raise UserError(f"job {job_id} is already {job['status']}: a matched job cannot be cancelled")
        nonce = int(job["order"]["nonce"])
    assert nonce is not None
    market = user.chain.job_market
    if user.chain.call(market.functions.nonceUsed(user.address, nonce)):
        raise UserError(f"nonce {nonce} of {user.address} is already used or cancelled")
    receipt = user.chain.transact(market.functions.cancelNonce(nonce))
    return {"job_id": job_id, "nonce": str(nonce), "tx": _hex(receipt["transactionHash"])}


# ---------------------------------------------------------------------------------------------- fetch


def fetch_model(user: User, job_id: str, out_dir: str | os.PathLike[str], *, solver_uri: bool = True) -> dict[str, Any]:
    """Downloads the final state of a finalized job, checks that its bytes hash (state root) to the committed
    ``finalStateRoot``, and writes ``final_state.vts`` (the canonical bytes), ``model.pt`` (a PyTorch
    ``state_dict`` of the trained model), ``spec.json`` and ``job.json`` into ``out_dir``."""
    import torch

    from protocol.blobstore import HttpBlobClient, state_address
    from protocol.engine.models import build_model
    from protocol.state import deserialize

    _check_job_id(job_id)
    job = chain_job(user, job_id)
    state = JobState(job.state)
    if state != JobState.FINALIZED:
        hint = {
            JobState.NONE: "no such job on this chain",
            JobState.SLASHED: "its solver was slashed: the model is not trustworthy",
            JobState.EXPIRED: "it expired without a commitment",
            JobState.VOIDED: "a dispute found no full arbitration committee in time: the price was refunded",
        }.get(state, "wait for it to finalize (`veritrain job status --wait`)")
        raise UserError(f"job {job_id} is {state.name.lower()}, not finalized: {hint}")
    root = _hex(job.finalStateRoot)
    detail = user.api_request("GET", f"/jobs/{job_id}")
    if not detail.get("spec"):
        raise UserError(f"the API at {user.api_url} does not hold the spec of job {job_id}")
    spec = parse_spec(detail["spec"])
    sources = [user.api_url]
    uri = (detail.get("trajectory") or {}).get("uri")
    if solver_uri and uri and uri.startswith("http"):
        sources.append(uri)
    data, errors = None, []
    for base in sources:
        try:
            with HttpBlobClient(base, retries=1) as client:
                data = client.get(root, "state")  # verified against the address (the state root)
            break
        except VeritrainError as exc:
            errors.append(f"{base}: {exc}")
    if data is None:
        raise UserError(f"could not download state {root} from any mirror: " + "; ".join(errors))
    if state_address(data) != root:  # HttpBlobClient checked it already; check again where the user sees it
        raise UserError(f"the downloaded state does not hash to the committed root {root}")
    ts = deserialize(data, expected_root=bytes.fromhex(root[2:]))
    model = build_model(spec.model, False, spec.lora)
    params = {k.removeprefix("param/"): t for k, t in ts.tensors.items() if k.startswith("param/")}
    model.load_state_dict(params, strict=True)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "final_state.vts").write_bytes(data)
    torch.save(model.state_dict(), out / "model.pt")
    files = {"state": str(out / "final_state.vts"), "model": str(out / "model.pt"), "spec": str(out / "spec.json")}
    if spec.lora is not None:
        torch.save(merged_lora_state_dict(spec, params), out / "model_merged.pt")
        files["model_merged"] = str(out / "model_merged.pt")
    (out / "spec.json").write_bytes(spec.canonical_json())
    metrics = _verified_metrics(user, job_id, job, ts)
    if metrics is not None:
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        files["metrics"] = str(out / "metrics.json")
    info = {
        "job_id": job_id,
        "final_state_root": root,
        "step": int(ts.step),
        "bytes": len(data),
        "model": spec.model.kind,
        "files": files,
    }
    if metrics is not None:
        info["metrics"] = metrics["points"][-1] if metrics["points"] else None
    (out / "job.json").write_text(json.dumps(info, indent=2))
    return info


def merged_lora_state_dict(spec: JobSpec, params: dict[str, Any]) -> dict[str, Any]:
    """The base model's ``state_dict`` with every LoRA adapter folded into its layer:
    ``W + scale · (B @ A)`` (native float32 torch: a convenience for loading into the base architecture; the
    verified state is ``model.pt`` / ``final_state.vts``)."""
    import torch

    from protocol.engine.models import build_model

    assert spec.lora is not None
    scale = torch.tensor(spec.lora.alpha / spec.lora.rank, dtype=torch.float32).item()  # f32(alpha / rank)
    base = {k: v.clone() for k, v in params.items() if not k.endswith((".lora_A", ".lora_B"))}
    for key in list(base):
        if key.endswith(".weight") and f"{key[:-7]}.lora_A" in params:
            mod = key[:-7]
            base[key] = base[key] + scale * (params[f"{mod}.lora_B"] @ params[f"{mod}.lora_A"])
    build_model(spec.model, False).load_state_dict(base, strict=True)  # it is the base architecture's dict
    return base


def _verified_metrics(user: User, job_id: str, job: Any, final: Any) -> dict[str, Any] | None:
    """The job's checkpoint metrics for ``metrics.json``: the mirror's points, accepted only for leaves of the
    committed trajectory (the leaf list is checked against the on-chain root here) and with the final point
    equal to the metrics in the downloaded, verified final state. None when the spec records no metrics."""
    from protocol.replay import leaves_match_root

    if "metrics" not in (final.meta or {}):
        return None
    leaves_doc = user.api_request("GET", f"/jobs/{job_id}/leaves")
    leaves = [bytes.fromhex(x[2:]) for x in leaves_doc["leaves"]]
    if not leaves_match_root(leaves, int(job.numLeaves), bytes(job.trajectoryRoot)):
        raise UserError(f"the API's leaf list of job {job_id} does not hash to the committed trajectory root")
    points = user.api_request("GET", f"/jobs/{job_id}/metrics")["points"]
    for p in points:
        if not 0 <= p["leaf"] < len(leaves) or "0x" + leaves[p["leaf"]].hex() != p["state_root"]:
            raise UserError(f"the API's metrics name a checkpoint that is not leaf {p['leaf']} of job {job_id}")
    last = {k: v for k, v in final.meta["metrics"].items()}
    if not points or points[-1]["leaf"] != len(leaves) - 1 or any(points[-1].get(k) != v for k, v in last.items()):
        raise UserError(f"the API's metrics of the final checkpoint differ from the verified final state of {job_id}")
    return {
        "job_id": job_id,
        "trajectory_root": _hex(job.trajectoryRoot),
        "verified": "leaf roots against the trajectory root; the final point against the final state",
        "points": points,
    }


# ---------------------------------------------------------------------------------------------- stake


def stake_position(user: User, address: str | None = None) -> dict[str, Any]:
    who = address or user.address
    if not is_address(who):
        raise UserError(f"{who!r} is not an address")
    who = to_checksum_address(who)
    sm, token = user.chain.stake_manager, user.chain.token
    pos = user.chain.call(sm.functions.positionOf(who))
    return {
        "address": who,
        "wallet": str(user.chain.call(token.functions.balanceOf(who))),
        "free": str(pos.free),
        "locked": str(pos.locked),
        "unbonding": str(pos.unbonding),
        "release_at": int(pos.releaseAt),
        "claimable": str(pos.claimable),
        "verifier": bool(pos.verifier),
        "draw_weight": str(user.chain.call(sm.functions.drawWeightOf(who))),
    }


def stake_deposit(user: User, amount: int, *, verifier: bool | None = None) -> dict[str, Any]:
    """Approves and deposits ``amount`` wei of VeriToken into the StakeManager; ``verifier`` turns the verifier
    flag on/off (verifiers are drawn for audits and committees)."""
    try:
        change = staking.deposit(user.chain, amount, verifier=verifier)
    except staking.InsufficientTokens as exc:
        raise UserError(str(exc)) from None
    return {"txs": change.tx_hashes, **stake_position(user)}


def stake_request_withdrawal(user: User, amount: int) -> dict[str, Any]:
    pos = staking.position(user.chain)
    if amount <= 0 or amount > pos.free:
        raise UserError(
            f"can request between 0 and the free stake ({tokens.format_tokens(pos.free)} VERI), "
            f"not {tokens.format_tokens(amount)}"
        )
    r = user.chain.transact(user.chain.stake_manager.functions.requestWithdrawal(amount))
    return {"txs": [_hex(r["transactionHash"])], **stake_position(user)}


def stake_withdraw(user: User) -> dict[str, Any]:
    """Pays out what is claimable (payments, rewards) plus unbonded stake whose delay has passed."""
    change = staking.withdraw(user.chain)
    if not change.withdrawn:
        pos = staking.position(user.chain)
        now = int(user.chain.w3.eth.get_block("latest")["timestamp"])
        wait = f"; {tokens.format_tokens(pos.unbonding)} VERI unbond in {pos.releaseAt - now}s" if pos.unbonding else ""
        raise UserError(f"nothing to withdraw for {user.address} yet{wait}")
    return {"withdrawn": str(change.withdrawn), "txs": change.tx_hashes, **stake_position(user)}


__all__ = [
    "User",
    "UserError",
    "accept_bid",
    "cancel_order",
    "connect",
    "fetch_model",
    "job_summary",
    "load_spec_source",
    "PreparedJob",
    "prepare_spec",
    "submit_job",
    "wait_for_bid",
    "wait_outcome",
]
