"""Every bad request is a precise 4xx with {"error", "detail"} and stores nothing (SQLite and PostgreSQL)."""

from __future__ import annotations

import json

import pytest
from api_helpers import CHAIN_ID, ETHER, JOB_MARKET, NOW
from eth_account import Account

from marketplace_api.models import BidRow, Order, SolverProfileRow
from protocol.eip712 import Domain
from protocol.spec import parse_spec


def rejected(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "detail"} and body["error"] == code, body
    assert body["detail"]
    return body


def nothing_stored(market, orders: int = 0, bids: int = 0) -> None:
    assert (market.count(Order), market.count(BidRow), market.count(SolverProfileRow)) == (orders, bids, 0)


def test_wrong_signer(market):
    _, body = market.order(signer=market.stranger)
    d = rejected(market.client.post("/jobs", json=body), 422, "bad_signature")
    assert market.stranger.address in d["detail"] and market.submitter.address in d["detail"]
    nothing_stored(market)


def test_wrong_chain_id(market):
    _, body = market.order(domain=Domain(1, JOB_MARKET))  # signed for mainnet
    body["chain_id"] = 1
    rejected(market.client.post("/jobs", json=body), 422, "wrong_chain")
    del body["chain_id"]  # not declared: the signature check catches it
    rejected(market.client.post("/jobs", json=body), 422, "bad_signature")
    _, body = market.order(domain=Domain(CHAIN_ID, "0x" + "12" * 20))  # another verifying contract
    rejected(market.client.post("/jobs", json=body), 422, "bad_signature")
    nothing_stored(market)


def test_expired_order_and_bid(market):
    _, body = market.order(deadline=NOW)
    rejected(market.client.post("/jobs", json=body), 422, "expired")
    job_id, _ = market.post_order()
    _, bid = market.bid(job_id, expiry=NOW - 1)
    rejected(market.client.post(f"/jobs/{job_id}/bids", json=bid), 422, "expired")
    nothing_stored(market, orders=1)


def test_reused_nonce_and_duplicates(market):
    job_id, body = market.post_order()
    rejected(market.client.post("/jobs", json=body), 409, "duplicate")
    _, again = market.order(nonce=int(body["order"]["nonce"]))  # another order, same nonce
    rejected(market.client.post("/jobs", json=again), 409, "nonce_reused")
    _, bid = market.bid(job_id, eta=60)
    assert market.client.post(f"/jobs/{job_id}/bids", json=bid).status_code == 201
    rejected(market.client.post(f"/jobs/{job_id}/bids", json=bid), 409, "duplicate")
    _, bid2 = market.bid(job_id, nonce=int(bid["bid"]["nonce"]), price=20 * ETHER)
    rejected(market.client.post(f"/jobs/{job_id}/bids", json=bid2), 409, "nonce_reused")
    nothing_stored(market, orders=1, bids=1)


def test_malformed_spec(market):
    dataset = market.upload(b"data")
    bad = market.spec_doc(dataset, batch_size=0, total_steps=10, optimiser={"kind": "sgd"})
    bad_hash = market.upload(b'{"not": "a spec"}')
    _, body = market.order(spec=(bad_hash, dataset, market.spec_doc(dataset)))
    d = rejected(market.client.post("/jobs", json=body), 422, "invalid_spec")
    assert "model: Field required" in d["detail"]
    body["spec"] = bad
    d = rejected(market.client.post("/jobs", json=body), 422, "invalid_spec")
    assert "batch_size" in d["detail"] and "optimiser" in d["detail"]
    # valid but not canonical bytes under the order's hash
    doc = market.spec_doc(dataset)
    loose = market.upload(json.dumps(parse_spec(doc).model_dump(mode="json"), indent=1).encode())
    _, body = market.order(spec=(loose, dataset, doc))
    rejected(market.client.post("/jobs", json=body), 422, "spec_hash_mismatch")
    # valid spec that disagrees with the signed order
    _, body = market.order(spec=market.make_spec(), totalSteps=128)
    d = rejected(market.client.post("/jobs", json=body), 422, "spec_mismatch")
    assert "totalSteps" in d["detail"]
    nothing_stored(market)


def test_missing_blobs(market):
    spec_hash, dataset, doc = market.make_spec()
    _, body = market.order(spec=("0x" + "ee" * 32, dataset, doc))
    rejected(market.client.post("/jobs", json=body), 422, "spec_missing")
    doc2 = market.spec_doc("0x" + "dd" * 32)
    spec2 = market.upload(parse_spec(doc2).canonical_json())
    _, body = market.order(spec=(spec2, "0x" + "dd" * 32, doc2))
    rejected(market.client.post("/jobs", json=body), 422, "dataset_missing")
    nothing_stored(market)


def test_oversized_requests(market):
    r = market.client.post("/blobs", content=b"x" * ((1 << 20) + 1))
    rejected(r, 413, "too_large")
    assert list(market.ctx.blobs.iter_blobs()) == []
    _, body = market.order()
    body["spec"] = {"pad": "x" * (70 * 1024)}
    rejected(market.client.post("/jobs", json=body), 413, "too_large")
    nothing_stored(market)


def test_unknown_ids(market):
    c, unknown = market.client, "0x" + "ab" * 32
    rejected(c.get(f"/jobs/{unknown}"), 404, "not_found")
    rejected(c.get(f"/jobs/{unknown}/bids"), 404, "not_found")
    rejected(c.get(f"/jobs/{unknown}/accept-call"), 404, "not_found")
    _, bid = market.bid(unknown)
    rejected(c.post(f"/jobs/{unknown}/bids", json=bid), 404, "not_found")
    rejected(c.get("/jobs/0x1234"), 400, "bad_job_id")
    rejected(c.get("/disputes/123456"), 404, "not_found")
    rejected(c.get("/blobs/" + unknown), 404, "not_found")
    rejected(c.get("/stakers/0xnothex"), 400, "bad_address")
    rejected(c.get("/nowhere"), 404, "not_found")
    rejected(c.delete("/jobs"), 405, "method_not_allowed")
    nothing_stored(market)


@pytest.mark.parametrize("payload", [b"{bad", b"", b"\xff\xfe", b"[1, 2]", b"null", b'"a string"'])
def test_garbage_json(market, payload):
    r = market.client.post("/jobs", content=payload, headers={"content-type": "application/json"})
    assert r.status_code in (400, 422) and set(r.json()) == {"error", "detail"}
    if payload in (b"{bad", b"\xff\xfe"):
        assert r.json()["error"] == "bad_json"
    r = market.client.post("/jobs", content=b"{bad")  # no content type
    rejected(r, 400, "bad_json")
    nothing_stored(market)


def test_bid_rules(market):
    job_id, _ = market.post_order()
    c = market.client
    _, body = market.bid(job_id, price=200 * ETHER)
    rejected(c.post(f"/jobs/{job_id}/bids", json=body), 422, "price_above_max")
    _, body = market.bid(job_id, stake=1)
    rejected(c.post(f"/jobs/{job_id}/bids", json=body), 422, "stake_too_low")
    _, body = market.bid(job_id, signer=market.stranger)
    rejected(c.post(f"/jobs/{job_id}/bids", json=body), 422, "bad_signature")
    _, body = market.bid(job_id, orderHash=b"\x01" * 32)
    rejected(c.post(f"/jobs/{job_id}/bids", json=body), 422, "order_mismatch")
    _, body = market.bid(job_id, eta=60)
    body["eta_seconds"] = 1  # ETA changed after signing
    rejected(c.post(f"/jobs/{job_id}/bids", json=body), 422, "bad_signature")
    del body["eta_signature"]
    rejected(c.post(f"/jobs/{job_id}/bids", json=body), 422, "eta_incomplete")
    _, body = market.bid(job_id)
    body["signature"] = body["signature"][:-2] + "1f"  # v = 31
    rejected(c.post(f"/jobs/{job_id}/bids", json=body), 422, "bad_signature")
    body["signature"] = "0x1234"
    rejected(c.post(f"/jobs/{job_id}/bids", json=body), 422, "invalid_request")
    _, body = market.bid(job_id)
    body["bid"]["price"] = "-5"
    rejected(c.post(f"/jobs/{job_id}/bids", json=body), 422, "invalid_request")
    body["bid"]["price"] = str(2**256)
    rejected(c.post(f"/jobs/{job_id}/bids", json=body), 422, "invalid_request")
    body["bid"]["price"] = "1"
    body["extra"] = 1
    rejected(c.post(f"/jobs/{job_id}/bids", json=body), 422, "invalid_request")
    nothing_stored(market, orders=1)


def test_high_s_signature_is_rejected_like_the_contract_does(market):
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    _, body = market.order()
    sig = bytes.fromhex(body["signature"][2:])
    s = n - int.from_bytes(sig[32:64], "big")
    flipped = sig[:32] + s.to_bytes(32, "big") + bytes([55 - sig[64]])  # the other valid (malleable) form
    body["signature"] = "0x" + flipped.hex()
    d = rejected(market.client.post("/jobs", json=body), 422, "bad_signature")
    assert "high s" in d["detail"]
    nothing_stored(market)


def test_no_deployment_means_no_signed_writes(tmp_path, db_url):
    from fastapi.testclient import TestClient

    from marketplace_api.core.config import Settings
    from marketplace_api.main import create_app

    app = create_app(Settings(data_dir=tmp_path, database_url=db_url, indexer=False))
    with TestClient(app) as c:
        acct = Account.from_key(b"\x07" * 32)
        r = c.post(
            f"/solvers/{acct.address}/profile",
            json={
                "profile": {"throughput": {"mlp": 1}, "kernel_set": "k"},
                "issued_at": 1,
                "signature": "0x" + "11" * 65,
            },
        )
        rejected(r, 503, "no_deployment")


def _chain_rows(market, *rows) -> None:
    with market.ctx.sessions() as s:
        s.add_all(rows)
        s.commit()


def test_cancelled_nonce_and_matched_job(market):
    """Orders whose nonce the submitter cancelled on-chain, or whose job is already on-chain, are refused; a
    duplicate is still named a duplicate first (the precedence of the checks)."""
    from marketplace_api.models import ChainEventRow, JobSnapshot

    order, body = market.order()
    _chain_rows(
        market,
        ChainEventRow(
            block_number=2,
            block_hash="0x" + "aa" * 32,
            block_time=NOW,
            tx_hash="0x" + "bb" * 32,
            log_index=0,
            contract="JobMarket",
            name="NonceCancelled",
            args={},
            account=market.submitter.address,
            ref=str(order.nonce),
        ),
    )
    rejected(market.client.post("/jobs", json=body), 409, "nonce_cancelled")
    _, other = market.order()  # another nonce of the same submitter is fine
    job_id = market.client.post("/jobs", json=other).json()["job_id"]
    order, body = market.order()
    digest = "0x" + order.digest(market.domain).hex()
    z = "0x" + "00" * 32
    _chain_rows(
        market,
        JobSnapshot(
            job_id=digest,
            block_number=3,
            block_hash="0x" + "cc" * 32,
            state=1,
            submitter=market.submitter.address,
            solver=market.solver.address,
            deadline=NOW + 100,
            num_leaves=16,
            price=1,
            stake=1,
            init_state_root=z,
            trajectory_root=z,
            final_state_root=z,
            committed_at=0,
            audit_end=0,
            seed_block=0,
            window_left=0,
            seed=z,
        ),
    )
    rejected(market.client.post("/jobs", json=body), 409, "already_matched")
    rejected(market.client.post("/jobs", json=other), 409, "duplicate")
    nothing_stored(market, orders=1)
    assert market.client.get(f"/jobs/{job_id}").status_code == 200
