"""The order book on SQLite and PostgreSQL: post and read orders, bids (ranked), profiles, accept call data."""

from __future__ import annotations

from api_helpers import CHAIN_ID, ETHER, JOB_MARKET, NOW
from eth_abi import decode as abi_decode
from eth_utils import keccak

from marketplace_api.models import BidRow, Order


def test_post_order_stores_it_under_its_eip712_digest(market):
    order, body = market.order()
    r = market.client.post("/jobs", json=body)
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["job_id"] == "0x" + order.digest(market.domain).hex()
    assert job["status"] == "open" and job["model_kind"] == "mlp" and job["bids"] == 0
    assert job["order"]["maxPrice"] == str(100 * ETHER)  # uint256 as a decimal string
    detail = market.client.get(f"/jobs/{job['job_id']}").json()
    assert detail["order"] == job["order"] and detail["spec"]["total_steps"] == 64
    assert detail["chain"] is None and detail["bids"] == [] and detail["disputes"] == []


def test_inline_spec_is_checked_and_stored(market):
    dataset = market.upload(b"inline dataset")
    doc = market.spec_doc(dataset)
    from protocol.spec import parse_spec

    spec_hash = "0x" + parse_spec(doc).spec_hash().hex()
    assert not market.ctx.blobs.has(spec_hash)
    _, body = market.order(spec=(spec_hash, dataset, doc))
    body["spec"] = doc
    r = market.client.post("/jobs", json=body)
    assert r.status_code == 201, r.text
    assert market.ctx.blobs.get(spec_hash) == parse_spec(doc).canonical_json()


def test_list_jobs_filters_and_paginates(market):
    ids = [market.post_order()[0] for _ in range(5)]
    page1 = market.client.get("/jobs", params={"limit": 2}).json()
    assert [j["job_id"] for j in page1["items"]] == ids[::-1][:2]
    page2 = market.client.get("/jobs", params={"limit": 2, "cursor": page1["next_cursor"]}).json()
    page3 = market.client.get("/jobs", params={"limit": 2, "cursor": page2["next_cursor"]}).json()
    assert [j["job_id"] for j in page2["items"] + page3["items"]] == ids[::-1][2:]
    assert page3["next_cursor"] is None
    assert len(market.client.get("/jobs", params={"status": "open"}).json()["items"]) == 5
    assert market.client.get("/jobs", params={"status": "matched"}).json()["items"] == []
    assert market.client.get("/jobs", params={"model": "cnn"}).json()["items"] == []
    mine = market.client.get("/jobs", params={"submitter": market.submitter.address.lower()}).json()
    assert len(mine["items"]) == 5
    r = market.client.get("/jobs", params={"limit": 201})
    assert r.status_code == 422 and r.json()["error"] == "limit_too_large"


def test_bids_are_ranked_by_price_among_those_meeting_the_deadline(market):
    job_id, _ = market.post_order()  # deadline NOW + 1 day; 64 steps x batch 8 = 512 examples
    c = market.client
    # solver: cheap but slow (signed ETA two days) -> infeasible; solver2: dearer, fast -> best
    _, slow = market.bid(job_id, price=10 * ETHER, eta=2 * 86_400)
    _, fast = market.bid(job_id, solver=market.solver2, price=40 * ETHER, eta=3_600)
    _, fast_dear = market.bid(job_id, solver=market.solver2, price=60 * ETHER, eta=60)
    # stranger: no ETA, but a profile: 512 examples at 1/s = 512 s -> feasible, cheapest feasible
    r = c.post(f"/solvers/{market.stranger.address}/profile", json=market.profile(market.stranger, {"mlp": 1.0}))
    assert r.status_code == 201, r.text
    _, profiled = market.bid(job_id, solver=market.stranger, price=45 * ETHER)
    _, unknown = market.bid(job_id, solver=market.submitter, price=1 * ETHER)  # no ETA, no profile
    for body in (slow, fast, fast_dear, profiled, unknown):
        r = c.post(f"/jobs/{job_id}/bids", json=body)
        assert r.status_code == 201, r.text
    listing = c.get(f"/jobs/{job_id}/bids").json()
    assert listing["total"] == 5
    items = listing["items"]
    assert [(i["bid"]["price"], i["feasible"], i["rank"]) for i in items] == [
        (str(40 * ETHER), True, 1),
        (str(45 * ETHER), True, 2),
        (str(60 * ETHER), True, 3),
        (str(1 * ETHER), False, None),
        (str(10 * ETHER), False, None),
    ]
    assert items[1]["eta_source"] == "profile" and items[1]["eta_seconds"] == 512
    assert "no ETA" in items[3]["infeasible_reasons"][0]
    assert "misses the deadline" in items[4]["infeasible_reasons"][0]
    assert items[0]["solver_record"] == {"jobs_matched": 0, "jobs_finalized": 0, "jobs_slashed": 0, "jobs_expired": 0}
    only = c.get(f"/jobs/{job_id}/bids", params={"feasible_only": True, "limit": 1}).json()
    assert [i["rank"] for i in only["items"]] == [1] and only["total"] == 3
    assert c.get(f"/jobs/{job_id}").json()["bids"][0]["rank"] == 1


def test_accept_call_encodes_accept_bid_for_the_best_feasible_bid(market):
    job_id, order_body = market.post_order()
    bid, body = market.bid(job_id, price=30 * ETHER, eta=600)
    market.client.post(f"/jobs/{job_id}/bids", json=body)
    _, dearer = market.bid(job_id, solver=market.solver2, price=35 * ETHER, eta=600)
    market.client.post(f"/jobs/{job_id}/bids", json=dearer)
    r = market.client.get(f"/jobs/{job_id}/accept-call")
    assert r.status_code == 200, r.text
    call = r.json()
    assert call["to"] == JOB_MARKET and call["chain_id"] == CHAIN_ID and call["sender"] == market.submitter.address
    assert call["bid_hash"] == "0x" + bid.digest(market.domain).hex()
    data = bytes.fromhex(call["data"][2:])
    selector = keccak(
        text="acceptBid((address,bytes32,bytes32,bytes32,uint64,uint64,uint256,uint64,uint256),bytes,"
        "(address,bytes32,uint256,uint256,uint64,uint256,uint64),bytes)"
    )[:4]
    assert data[:4] == selector
    o, osig, b, bsig = abi_decode(
        [
            "(address,bytes32,bytes32,bytes32,uint64,uint64,uint256,uint64,uint256)",
            "bytes",
            "(address,bytes32,uint256,uint256,uint64,uint256,uint64)",
            "bytes",
        ],
        data[4:],
    )
    assert "0x" + osig.hex() == order_body["signature"] and "0x" + bsig.hex() == body["signature"]
    assert b[2] == 30 * ETHER and o[8] == int(order_body["order"]["nonce"]) and b[6] == bid.workTime
    other = market.client.get(f"/jobs/{job_id}/accept-call", params={"bid": "0x" + "00" * 32})
    assert other.status_code == 404 and other.json()["error"] == "not_found"


def test_solver_profile_replaces_only_with_a_newer_one(market):
    c, who = market.client, market.solver
    assert c.post(f"/solvers/{who.address}/profile", json=market.profile(who, {"mlp": 5.0})).status_code == 201
    r = c.post(f"/solvers/{who.address}/profile", json=market.profile(who, {"mlp": 9.0}, issued_at=NOW))
    assert (r.status_code, r.json()["error"]) == (409, "stale_profile")
    assert (
        c.post(f"/solvers/{who.address}/profile", json=market.profile(who, {"mlp": 9.0}, issued_at=NOW + 1)).status_code
        == 201
    )
    got = c.get(f"/solvers/{who.address}").json()
    assert got["profile"]["profile"]["throughput"] == {"mlp": 9.0} and got["record"]["jobs_matched"] == 0
    r = c.post(f"/solvers/{who.address}/profile", json=market.profile(market.stranger, {"mlp": 1.0}, NOW + 5))
    assert (r.status_code, r.json()["error"]) == (422, "bad_signature")
    r = c.post(f"/solvers/{who.address}/profile", json=market.profile(who, {"mlp": 1.0}, NOW + 10_000))
    assert (r.status_code, r.json()["error"]) == (422, "issued_in_future")


def test_reads_of_the_chain_side_are_empty_without_an_indexer(market):
    c = market.client
    assert c.get("/disputes").json() == {"items": [], "next_cursor": None}
    assert c.get("/disputes/7").json()["error"] == "not_found"
    staker = c.get(f"/stakers/{market.solver.address}").json()
    assert staker["free"] == "0" and staker["history"] == [] and staker["block_number"] is None
    health = c.get("/health").json()
    assert health["status"] == "ok" and health["chain_id"] == CHAIN_ID and health["job_market"] == JOB_MARKET


def test_metrics_count_requests_and_rejections(market):
    market.post_order()
    market.client.post("/jobs", content=b"{nope", headers={"content-type": "application/json"})
    text = market.client.get("/metrics").text
    assert 'veritrain_http_requests_total{method="POST",route="/jobs",status="201"} 1' in text
    assert 'veritrain_rejections_total{error="bad_json"} 1' in text
    assert "veritrain_orders_accepted_total 1" in text
    assert 'veritrain_rows{table="orders"} 1' in text
    assert market.count(Order) == 1 and market.count(BidRow) == 0
