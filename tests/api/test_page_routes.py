"""The read routes the auditor pages use, on an empty index (SQLite and PostgreSQL): the job board's solver
filter, the stakers list, and their bad input (400, nothing changed). Their content on a real chain is checked
in tests/web/test_pages.py (the pages and the JSON they read)."""

from __future__ import annotations

import pytest


def test_solver_filter_and_field_on_the_job_board(market):
    c = market.client
    job_id, _ = market.post_order()
    items = c.get("/jobs").json()["items"]
    assert [(j["job_id"], j["solver"]) for j in items] == [(job_id, None)]  # open: no solver yet
    assert c.get("/jobs", params={"solver": market.solver.address}).json()["items"] == []
    assert c.get("/jobs", params={"solver": market.solver.address.lower()}).json()["items"] == []


@pytest.mark.parametrize(
    "path, params, code",
    [
        ("/jobs", {"solver": "0x1234"}, "bad_address"),
        ("/jobs", {"solver": "0x" + "aB" * 20}, "bad_address"),  # mixed case with a wrong checksum
        ("/stakers", {"after": "nope"}, "bad_address"),
    ],
)
def test_bad_filters_are_400(market, path, params, code):
    r = market.client.get(path, params=params)
    assert (r.status_code, r.json()["error"]) == (400, code), r.text


def test_stakers_list_and_staker_on_an_empty_index(market):
    c = market.client
    assert c.get("/stakers").json() == {"items": [], "next_cursor": None}
    staker = c.get(f"/stakers/{market.solver.address}").json()
    assert (staker["locks"], staker["slashed_total"], staker["slashes"]) == ([], "0", [])


def test_pages_are_served_and_root_redirects(market):
    c = market.client
    r = c.get("/", follow_redirects=False)
    assert r.status_code in (302, 307) and r.headers["location"] == "/ui/"
    for page in ("", "index.html", "job.html", "dispute.html", "disputes.html", "staker.html", "stakers.html"):
        r = c.get(f"/ui/{page}")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), page
        assert '<script src="common.js" defer></script>' in r.text
        assert "script-src 'self'" in r.headers["content-security-policy"]
    assert c.get("/ui/common.js").status_code == 200
    assert c.get("/ui/nope.html").status_code == 404
    assert "/ui" not in str(c.get("/openapi.json").json()["paths"].keys())
