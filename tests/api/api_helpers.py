"""Helpers of the marketplace API tests: a fake deployment, signed orders/bids/profiles, the Market handle."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from marketplace_api.context import AppContext
from marketplace_api.core.config import Settings
from protocol.deploy import load_params
from protocol.eip712 import Bid, BidEta, Domain, JobOrder, SolverProfile
from protocol.repro.version import KERNEL_SET_VERSION
from protocol.spec import parse_spec

CHAIN_ID = 31337
JOB_MARKET = "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"
NOW = 1_800_000_000
ETHER = 10**18
_db_counter = itertools.count()


def fake_deployment(path: Path) -> Path:
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "chainId": CHAIN_ID,
                "addresses": {
                    "token": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
                    "stakeManager": "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512",
                    "jobMarket": JOB_MARKET,
                    "statePublisher": "0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9",
                    "disputeGame": "0xDc64a140Aa3E981100a9becA4E685f962f0cF6C9",
                },
                "startBlock": 1,
                "deployer": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
                "params": load_params(),
            }
        )
    )
    return path


@dataclass
class Market:
    client: TestClient
    ctx: AppContext
    domain: Domain
    submitter: LocalAccount
    solver: LocalAccount
    solver2: LocalAccount
    stranger: LocalAccount
    nonces: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    # ------------------------------------------------------------- blobs and specs

    def upload(self, data: bytes) -> str:
        r = self.client.post("/blobs", content=data)
        assert r.status_code == 200, r.text
        return r.json()["address"]

    def spec_doc(self, dataset: str, **changes: Any) -> dict[str, Any]:
        doc = {
            "model": {"kind": "mlp", "input_dim": 4, "hidden": [8], "num_classes": 2},
            "dataset": {"format": "npz", "digest": dataset},
            "optimizer": {"kind": "sgd", "lr": 0.1},
            "batch_size": 8,
            "total_steps": 64,
            "checkpoint_interval": 4,
            "seed": 1,
            "mode": {"kind": "exact", "kernel_set": KERNEL_SET_VERSION},
            "init_state_root": "0x" + "33" * 32,
        }
        doc.update(changes)
        return doc

    def make_spec(self, **changes: Any) -> tuple[str, str, dict[str, Any]]:
        """Uploads a dataset and a canonical spec naming it; returns (spec hash, dataset hash, spec doc)."""
        dataset = self.upload(b"dataset bytes " + os.urandom(8))
        doc = self.spec_doc(dataset, **changes)
        spec_hash = self.upload(parse_spec(doc).canonical_json())
        return spec_hash, dataset, doc

    # ------------------------------------------------------------- signed objects

    def order(
        self,
        *,
        spec: tuple[str, str, dict] | None = None,
        signer: LocalAccount | None = None,
        domain: Domain | None = None,
        **changes: Any,
    ) -> tuple[JobOrder, dict[str, Any]]:
        spec_hash, dataset, doc = spec or self.make_spec()
        fields = dict(
            submitter=self.submitter.address,
            specHash=bytes.fromhex(spec_hash[2:]),
            datasetHash=bytes.fromhex(dataset[2:]),
            initStateRoot=bytes.fromhex(doc["init_state_root"][2:]),
            totalSteps=doc["total_steps"],
            checkpointInterval=doc["checkpoint_interval"],
            maxPrice=100 * ETHER,
            deadline=NOW + 86_400,
            nonce=next(self.nonces),
        )
        fields.update(changes)
        order = JobOrder(**fields)
        sig = order.sign(domain or self.domain, signer or self.submitter)
        return order, {"order": order.as_json(), "signature": "0x" + sig.hex(), "chain_id": CHAIN_ID}

    def post_order(self, **kw: Any) -> tuple[str, dict[str, Any]]:
        order, body = self.order(**kw)
        r = self.client.post("/jobs", json=body)
        assert r.status_code == 201, r.text
        return r.json()["job_id"], body

    def bid(
        self,
        job_id: str,
        *,
        solver: LocalAccount | None = None,
        signer: LocalAccount | None = None,
        eta: int | None = None,
        **changes: Any,
    ) -> tuple[Bid, dict[str, Any]]:
        solver = solver or self.solver
        price = changes.pop("price", 50 * ETHER)
        fields = dict(
            solver=solver.address,
            orderHash=bytes.fromhex(job_id[2:]),
            price=price,
            stake=self.ctx.required_stake(price),
            expiry=NOW + 3_600,
            nonce=next(self.nonces),
            workTime=600,
        )
        fields.update(changes)
        bid = Bid(**fields)
        body: dict[str, Any] = {"bid": bid.as_json(), "signature": "0x" + bid.sign(self.domain, signer or solver).hex()}
        if eta is not None:
            e = BidEta(solver=solver.address, bidHash=bid.digest(self.domain), etaSeconds=eta)
            body |= {"eta_seconds": eta, "eta_signature": "0x" + e.sign(self.domain, solver).hex()}
        return bid, body

    def profile(self, solver: LocalAccount, throughput: dict[str, float], issued_at: int = NOW) -> dict[str, Any]:
        from marketplace_api.book import profile_hash

        doc = {"throughput": throughput, "kernel_set": KERNEL_SET_VERSION}
        typed = SolverProfile(solver=solver.address, profileHash=profile_hash(doc), issuedAt=issued_at)
        return {"profile": doc, "issued_at": issued_at, "signature": "0x" + typed.sign(self.domain, solver).hex()}

    # ------------------------------------------------------------- database

    def count(self, model: Any) -> int:
        from sqlalchemy import func, select

        with self.ctx.sessions() as s:
            return s.scalar(select(func.count()).select_from(model)) or 0


def make_settings(tmp_path: Path, db_url: str, **kw: Any) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=db_url,
        deployment=fake_deployment(tmp_path / "deployment.json"),
        indexer=False,
        **kw,
    )
