"""Helpers of the solver node tests (tests/test_solver_*.py): a devnet (anvil + the protocol deployed with
``contracts/params/devnet.json``), the marketplace API served over real HTTP, a submitter that posts orders and
accepts bids, and an RPC proxy that can drop the connection right after forwarding a transaction."""

from __future__ import annotations

import http.server
import itertools
import json
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3

from marketplace_api.context import AppContext
from marketplace_api.core.config import Settings
from marketplace_api.main import create_app
from protocol.anvil import Anvil, dev_accounts
from protocol.deploy import Deployment, deploy
from protocol.eip712 import Domain, JobOrder
from protocol.engine.data import builtin_bytes, load_dataset
from protocol.engine.examples import load_example, shortened
from protocol.engine.runner import initial_state
from protocol.node import HttpService
from protocol.paths import repo_root
from protocol.spec import JobSpec
from protocol.state import state_root
from protocol.tx import send

ETHER = 10**18
DEVNET_PARAMS = repo_root() / "contracts" / "params" / "devnet.json"
_nonces = itertools.count(int(time.time() * 1000))


class RpcProxy:
    """An HTTP JSON-RPC proxy in front of anvil. ``drop_after_send``: the next ``eth_sendRawTransaction`` is
    forwarded to anvil (so it is mined), then the connection is closed without an answer and the proxy goes
    ``down`` (every request refused) until :meth:`up` — an RPC that dies mid-commit."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.down = False
        self.drop_after_send = False
        self.sent_while_dropping: list[str] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if proxy.down:
                    self.close_connection = True
                    self.connection.close()
                    return
                req = urllib.request.Request(proxy.target, data=body, headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=30) as resp:
                    answer = resp.read()
                if proxy.drop_after_send and b"eth_sendRawTransaction" in body:
                    proxy.sent_while_dropping.append(json.loads(answer).get("result", ""))
                    proxy.down, proxy.drop_after_send = True, False
                    self.close_connection = True
                    self.connection.close()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def up(self) -> None:
        self.down = False

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class World:
    anvil: Anvil
    w3: Web3
    deployment: Deployment
    api_url: str
    api_ctx: AppContext
    api_service: HttpService
    accounts: list[LocalAccount]
    domain: Domain
    params: dict = field(default_factory=dict)

    @property
    def submitter(self) -> LocalAccount:
        return self.accounts[1]

    def contract(self, name: str):
        return self.deployment.contract(self.w3, name)

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def mint(self, who: str, amount: int) -> None:
        send(self.w3, self.accounts[0], self.contract("VeriToken").functions.mint(who, amount))

    def stake_verifier(self, acct: LocalAccount, amount: int) -> None:
        token, stakes = self.contract("VeriToken"), self.contract("StakeManager")
        self.mint(acct.address, amount)
        send(self.w3, acct, token.functions.approve(stakes.address, amount))
        send(self.w3, acct, stakes.functions.deposit(amount))
        send(self.w3, acct, stakes.functions.setVerifier(True))

    # ----------------------------------------------------------------------------------- submitter

    def spec(self, total: int, interval: int, example: str = "mlp_digits", **changes: Any) -> JobSpec:
        spec = shortened(load_example(example), total, interval, **changes)
        root = state_root(initial_state(spec, load_dataset(spec.dataset)))
        return spec.with_init_root(root)

    def upload(self, data: bytes) -> str:
        req = urllib.request.Request(f"{self.api_url}/blobs", data=data, method="POST")
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())["address"]

    def post_order(self, spec: JobSpec, *, max_price: int = 100 * ETHER, deadline_s: int = 3_600) -> str:
        if spec.dataset.format == "builtin":
            assert self.upload(builtin_bytes(spec.dataset.builtin)) == spec.dataset.digest
        spec_hash = self.upload(spec.canonical_json())
        order = JobOrder(
            submitter=self.submitter.address,
            specHash=bytes.fromhex(spec_hash[2:]),
            datasetHash=bytes.fromhex(spec.dataset.digest[2:]),
            initStateRoot=bytes.fromhex(spec.init_state_root[2:]),
            totalSteps=spec.total_steps,
            checkpointInterval=spec.checkpoint_interval,
            maxPrice=max_price,
            deadline=self.now() + deadline_s,
            nonce=next(_nonces),
        )
        body = {
            "order": {
                "submitter": order.submitter,
                "specHash": spec_hash,
                "datasetHash": spec.dataset.digest,
                "initStateRoot": spec.init_state_root,
                "totalSteps": order.totalSteps,
                "checkpointInterval": order.checkpointInterval,
                "maxPrice": str(order.maxPrice),
                "deadline": order.deadline,
                "nonce": str(order.nonce),
            },
            "signature": "0x" + order.sign(self.domain, self.submitter).hex(),
            "chain_id": self.deployment.chain_id,
        }
        status, doc = self.http("POST", "/jobs", body)
        assert status == 201, doc
        return doc["job_id"]

    def http(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.api_url}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def bids(self, job_id: str) -> list[dict]:
        status, doc = self.http("GET", f"/jobs/{job_id}/bids")
        assert status == 200, doc
        return doc["items"]

    def accept(self, job_id: str, solver: str) -> dict:
        """The submitter accepts ``solver``'s bid through the API's accept-call helper; returns the receipt."""
        (bid,) = [b for b in self.bids(job_id) if b["bid"]["solver"] == solver]
        status, call = self.http("GET", f"/jobs/{job_id}/accept-call?bid={bid['bid_hash']}")
        assert status == 200, call
        tx = {"from": self.submitter.address, "to": call["to"], "data": call["data"], "chainId": call["chain_id"]}
        tx["gas"] = self.w3.eth.estimate_gas(tx) * 2
        tx["nonce"] = self.w3.eth.get_transaction_count(self.submitter.address, "pending")
        tx["gasPrice"] = self.w3.eth.gas_price * 2
        signed = self.submitter.sign_transaction(tx)
        receipt = self.w3.eth.wait_for_transaction_receipt(self.w3.eth.send_raw_transaction(signed.raw_transaction))
        assert receipt["status"] == 1
        return receipt

    def job(self, job_id: str) -> Any:
        return self.contract("JobMarket").functions.getJob(bytes.fromhex(job_id[2:])).call()

    def close(self) -> None:
        self.api_service.stop()
        self.api_ctx.engine.dispose()


def build_world(tmp: Path, anvil: Anvil) -> World:
    w3 = anvil.web3()
    accounts = dev_accounts()
    dep = deploy(w3, accounts[0], DEVNET_PARAMS, out_path=tmp / "deployment.json")
    settings = Settings(
        data_dir=tmp / "api", deployment=dep.path, rpc_url=anvil.url, indexer=False, max_clock_skew_s=10**7
    )
    ctx = AppContext.from_settings(settings)
    ctx.clock = lambda: max(time.time(), w3.eth.get_block("latest")["timestamp"])
    service = HttpService(create_app(ctx=ctx), "127.0.0.1", 0).start()
    world = World(
        anvil=anvil,
        w3=w3,
        deployment=dep,
        api_url=service.url,
        api_ctx=ctx,
        api_service=service,
        accounts=accounts,
        domain=Domain(dep.chain_id, dep.address_of("JobMarket")),
        params=dep.params,
    )
    token, stakes = world.contract("VeriToken"), world.contract("StakeManager")
    world.mint(world.submitter.address, 100_000 * ETHER)
    send(w3, world.submitter, token.functions.approve(stakes.address, 2**256 - 1))
    return world
