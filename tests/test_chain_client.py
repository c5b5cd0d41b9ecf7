"""protocol.chain.ChainClient on a real anvil devnet: nonces, reverts, retries, outages, at-most-once sends.

Faults are injected with real processes and sockets: an anvil that is stopped and restarted on the same
port with its state file (``--state``), a port nobody listens on, and a small HTTP proxy in front of anvil
that answers 503 or drops the connection (before or after forwarding the request). The chain itself is
never mocked.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3
from web3.middleware import Web3Middleware

from protocol.anvil import Anvil, dev_accounts, free_port
from protocol.chain import ChainClient
from protocol.deploy import deploy
from protocol.errors import (
    ChainMismatch,
    ContractRevert,
    RpcUnavailable,
    TransactionFailed,
    TransactionRejected,
)

pytestmark = pytest.mark.chain

ETHER = 10**18


# --------------------------------------------------------------------- helpers


class CountingMiddleware(Web3Middleware):
    """Counts the JSON-RPC methods a web3 instance sends (``counts`` is shared by all instances)."""

    counts: Counter[str] = Counter()

    def request_processor(self, method: Any, params: Any) -> Any:
        CountingMiddleware.counts[str(method)] += 1
        return method, params


def counting(client: ChainClient) -> Counter[str]:
    CountingMiddleware.counts = Counter()
    if "counting" not in client.w3.middleware_onion:
        client.w3.middleware_onion.add(CountingMiddleware, name="counting")
    return CountingMiddleware.counts


class FaultyProxy:
    """An HTTP JSON-RPC proxy in front of a node. ``faults[method]`` is a list of actions applied to the
    next requests of that method, one each: ``"503"`` (answer 503 without forwarding), ``"drop"`` (close
    the connection without forwarding), ``"drop-after"`` (forward, then close without answering)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.faults: dict[str, list[str]] = {}
        self.forwarded: Counter[str] = Counter()
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                method = json.loads(body).get("method", "?")
                with proxy.lock:
                    pending = proxy.faults.get(method) or []
                    action = pending.pop(0) if pending else None
                if action == "503":
                    self.send_error(503, "node overloaded")
                    return
                if action == "drop":
                    self.close_connection = True
                    return
                req = urllib.request.Request(proxy.upstream, data=body, headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=10) as resp:
                    answer = resp.read()
                with proxy.lock:
                    proxy.forwarded[method] += 1
                if action == "drop-after":
                    self.close_connection = True
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultyProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def nonce_of(w3: Web3, receipt: Any) -> int:
    return int(w3.eth.get_transaction(receipt["transactionHash"])["nonce"])


@pytest.fixture(scope="module")
def funded(w3, dev, deployment) -> Iterator[None]:
    """dev 7..9 hold VERI (minted by the deployer)."""
    minter = ChainClient(w3.provider.endpoint_uri, deployment, dev[0], receipt_timeout=20)
    for who in dev[7:10]:
        minter.transact(minter.token.functions.mint(who.address, 1_000 * ETHER))
    yield


# --------------------------------------------------------------------- nonces


def test_many_rapid_transactions_from_one_key_get_consecutive_nonces(w3, dev, deployment, funded):
    me = dev[9]
    client = ChainClient(w3.provider.endpoint_uri, deployment, me, receipt_timeout=20)
    first = w3.eth.get_transaction_count(me.address)
    t0 = time.perf_counter()
    receipts = [client.transact(client.token.functions.approve(client.stake_manager.address, 2**256 - 1))]
    # 30 deposits sent back to back without waiting, then the receipts
    hashes = [client.transact(client.stake_manager.functions.deposit(ETHER), wait=False) for _ in range(30)]
    receipts += [client.wait_for_receipt(h) for h in hashes]
    # 4 threads × 5 approvals on the same client
    results: list[Any] = []
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for i in range(5):
                results.append(client.transact(client.token.functions.approve(dev[k].address, i + 1)))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    receipts += results
    elapsed = time.perf_counter() - t0
    assert len(receipts) == 51 and all(r["status"] == 1 for r in receipts)
    nonces = sorted(nonce_of(w3, r) for r in receipts)
    assert nonces == list(range(first, first + 51))
    assert w3.eth.get_transaction_count(me.address) == first + 51
    stake = client.call(client.stake_manager.functions.positionOf(me.address))
    assert stake.free == 30 * ETHER
    print(f"\n51 transactions from one key in {elapsed:.2f}s")


def test_nonce_resynced_after_another_sender_used_the_key(w3, dev, deployment, funded):
    me = dev[8]
    client = ChainClient(w3.provider.endpoint_uri, deployment, me, receipt_timeout=20)
    r1 = client.transact(client.token.functions.approve(dev[1].address, 1))
    # the same key used behind the client's back: its cached nonce is now taken
    other = ChainClient(w3.provider.endpoint_uri, deployment, me, receipt_timeout=20)
    r2 = other.transact(other.token.functions.approve(dev[1].address, 2))
    assert nonce_of(w3, r2) == nonce_of(w3, r1) + 1
    calls = counting(client)
    r3 = client.transact(client.token.functions.approve(dev[1].address, 3))
    assert nonce_of(w3, r3) == nonce_of(w3, r1) + 2
    assert calls["eth_sendRawTransaction"] == 2  # rejected as "nonce too low", resynced, re-signed, sent
    assert client.call(client.token.functions.allowance(me.address, dev[1].address)) == 3


# --------------------------------------------------------------------- reverts


def test_revert_in_estimation_raises_by_name_and_sends_nothing(w3, dev, deployment, funded):
    me = dev[7]
    client = ChainClient(w3.provider.endpoint_uri, deployment, me, retries=5, backoff=0.5, receipt_timeout=20)
    client.transact(client.token.functions.approve(dev[1].address, 1))  # nonce cache warm
    nonce = w3.eth.get_transaction_count(me.address)
    calls = counting(client)
    with pytest.raises(ContractRevert) as err:
        client.transact(client.stake_manager.functions.requestWithdrawal(10**30))
    assert err.value.name == "InsufficientFreeStake"
    assert err.value.fields == {"account": me.address, "needed": 10**30, "available": 0}
    assert err.value.tx_hash is None  # caught before sending
    assert calls["eth_estimateGas"] == 1 and calls["eth_sendRawTransaction"] == 0  # no retry loop
    # with an explicit gas limit an eth_call checks it first
    with pytest.raises(ContractRevert) as err:
        client.transact(client.stake_manager.functions.deposit(0), gas=200_000)
    assert err.value.name == "ZeroAmount"
    assert calls["eth_sendRawTransaction"] == 0
    # reads decode the same way
    with pytest.raises(ContractRevert) as err:
        client.call(client.stake_manager.functions.deposit(0))
    assert err.value.name == "ZeroAmount" and isinstance(err.value, RuntimeError)
    # no nonce was used: the next transaction takes the one the failed ones would have had
    receipt = client.transact(client.token.functions.approve(dev[1].address, 2))
    assert nonce_of(w3, receipt) == nonce


def test_mined_revert_is_decoded_from_the_receipt_and_not_resent(w3, dev, deployment, funded):
    me = dev[7]
    client = ChainClient(w3.provider.endpoint_uri, deployment, me, receipt_timeout=20)
    nonce = w3.eth.get_transaction_count(me.address)
    calls = counting(client)
    with pytest.raises(ContractRevert) as err:
        client.transact(client.stake_manager.functions.requestWithdrawal(10**30), gas=300_000, preflight=False)
    assert err.value.name == "InsufficientFreeStake" and err.value.fields["needed"] == 10**30
    assert err.value.receipt["status"] == 0 and err.value.tx_hash == bytes(err.value.receipt["transactionHash"])
    assert calls["eth_sendRawTransaction"] == 1 and calls["eth_estimateGas"] == 0
    assert nonce_of(w3, err.value.receipt) == nonce  # mined: the nonce is used up
    # out of gas (above the intrinsic + EIP-7623 calldata floor, below the SSTORE): no reason -> TransactionFailed
    with pytest.raises(TransactionFailed):
        client.transact(client.token.functions.approve(dev[2].address, 5), gas=30_000, preflight=False)
    assert calls["eth_sendRawTransaction"] == 2
    assert nonce_of(w3, client.transact(client.token.functions.approve(dev[2].address, 6))) == nonce + 2


def test_node_refusal_is_a_clear_typed_error(w3, deployment):
    broke = Account.create()  # no ETH for gas
    client = ChainClient(w3.provider.endpoint_uri, deployment, broke, receipt_timeout=20)
    approve = client.token.functions.approve(broke.address, 1)
    for kw in ({}, {"gas": 100_000, "preflight": False}):  # anvil estimates fine, refuses the raw transaction
        with pytest.raises(TransactionRejected, match="(?i)rejected approve .* insufficient funds"):
            client.transact(approve, **kw)
    assert w3.eth.get_transaction_count(broke.address, "pending") == 0


# --------------------------------------------------------------------- RPC trouble


def test_dead_rpc_gives_rpc_unavailable_after_bounded_retries(deployment):
    url = f"http://127.0.0.1:{free_port()}"
    t0 = time.perf_counter()
    with pytest.raises(RpcUnavailable) as err:
        ChainClient(url, deployment, retries=3, backoff=0.1)
    elapsed = time.perf_counter() - t0
    assert elapsed < 3.0
    assert err.value.attempts == 4 and err.value.url == url
    message = str(err.value)
    assert url in message and "eth_chainId failed 4 times" in message and "node is running" in message
    assert isinstance(err.value, ConnectionError)


def test_chain_id_mismatch_is_detected(w3, deployment):
    with pytest.raises(ChainMismatch) as err:
        ChainClient(w3.provider.endpoint_uri, replace(deployment, chain_id=1))
    assert "chain id 31337" in str(err.value) and "chain 1" in str(err.value)
    assert isinstance(err.value, ValueError)


def test_5xx_and_dropped_connections_are_retried_without_double_sending(w3, dev, deployment, funded):
    me = dev[9]
    with FaultyProxy(w3.provider.endpoint_uri) as proxy:
        client = ChainClient(proxy.url, deployment, me, retries=4, backoff=0.05, receipt_timeout=20)
        start = w3.eth.get_transaction_count(me.address)

        # 503 twice on the nonce query, then a send whose answer is lost after the node took it
        proxy.faults = {"eth_getTransactionCount": ["503", "503"], "eth_sendRawTransaction": ["drop-after"]}
        receipt = client.transact(client.token.functions.approve(dev[3].address, 11))
        assert receipt["status"] == 1 and proxy.forwarded["eth_sendRawTransaction"] == 1  # looked up, not resent
        assert w3.eth.get_transaction_count(me.address) == start + 1

        # a send dropped before it reached the node: the lookup finds nothing, the same bytes go again
        proxy.faults = {"eth_sendRawTransaction": ["drop", "503"]}
        receipt = client.transact(client.token.functions.approve(dev[3].address, 12))
        assert receipt["status"] == 1 and proxy.forwarded["eth_sendRawTransaction"] == 2
        assert nonce_of(w3, receipt) == start + 1
        assert w3.eth.get_transaction_count(me.address) == start + 2

        # a receipt poll that keeps failing past the retries: RpcUnavailable, tx hash in the message
        proxy.faults = {"eth_getTransactionReceipt": ["503"] * 5}
        with pytest.raises(RpcUnavailable) as err:
            client.transact(client.token.functions.approve(dev[3].address, 13))
        assert "eth_getTransactionReceipt 0x" in str(err.value)
        assert w3.eth.get_transaction_count(me.address) == start + 3  # it was sent (and mined) once
        assert client.call(client.token.functions.allowance(me.address, dev[3].address)) == 13


def test_transaction_rides_out_a_node_restart(forge_build, tmp_path, caplog):
    state = tmp_path / "anvil-state.json"
    deployer = dev_accounts(1)[0]
    node = Anvil(extra_args=("--state", str(state))).start()
    try:
        deployment = deploy(node.web3(), deployer, out_path=tmp_path / "deployment.json")
        client = ChainClient(node.url, deployment, deployer, retries=8, backoff=0.1, max_backoff=0.5)
        client.transact(client.token.functions.mint(deployer.address, 1))
        port = node.port
        node.stop()

        # node down: reads and sends fail after the bounded retries, with a clear message
        url = f"http://127.0.0.1:{port}"
        quick = ChainClient(url, deployment, deployer, retries=2, backoff=0.05, connect=False)
        with pytest.raises(RpcUnavailable, match="is unavailable"):
            quick.transact(quick.token.functions.mint(deployer.address, 2))

        # restart on the same port with the same chain while a transaction is retrying
        def restart() -> None:
            time.sleep(0.6)
            node.requested_port = port
            node.start()

        threading.Thread(target=restart).start()
        caplog.set_level(logging.WARNING, logger="veritrain.chain")
        receipt = client.transact(client.token.functions.mint(deployer.address, 3))
        assert receipt["status"] == 1
        assert any("retry" in r.getMessage() for r in caplog.records)
        assert client.call(client.token.functions.balanceOf(deployer.address)) == 1 + 3
    finally:
        node.stop()
