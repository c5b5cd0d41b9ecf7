"""A local anvil devnet as a subprocess: ``with Anvil() as node: w3 = node.web3()``.

anvil binds 127.0.0.1 only, on a free port, and is killed when the block exits. Chain id 31337 by default,
with the ten well-known dev accounts (the mnemonic ``test test ... junk``), each holding 10 000 ETH; their
keys are in :data:`DEV_KEYS`. :func:`mine` and :func:`increase_time` drive block numbers and time in tests.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.types import RPCEndpoint

from protocol.errors import AnvilError
from protocol.paths import foundry_tool

#: Private keys of anvil's default dev accounts 0–9 (public knowledge; devnet only).
DEV_KEYS = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
)
DEFAULT_CHAIN_ID = 31337
_IMMUTABLE_REQUESTS = {
    RPCEndpoint("eth_chainId"),
    RPCEndpoint("net_version"),
    RPCEndpoint("web3_clientVersion"),
}
HOST = "127.0.0.1"


def dev_accounts(count: int = len(DEV_KEYS)) -> list[LocalAccount]:
    """eth-account signers for the first ``count`` dev accounts."""
    if not 0 <= count <= len(DEV_KEYS):
        raise ValueError(f"anvil has {len(DEV_KEYS)} well-known dev keys, asked for {count}")
    return [Account.from_key(k) for k in DEV_KEYS[:count]]


#: The mnemonic anvil derives its dev accounts from (public knowledge; devnet only).
DEV_MNEMONIC = "test test test test test test test test test test test junk"


def dev_key(index: int) -> str:
    """The private key (0x hex) of anvil's dev account ``index`` (BIP-44 path m/44'/60'/0'/0/index)."""
    if 0 <= index < len(DEV_KEYS):
        return DEV_KEYS[index]
    Account.enable_unaudited_hdwallet_features()
    acct = Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    return "0x" + bytes(acct.key).hex()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    """True if something accepts connections on 127.0.0.1:``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex((HOST, port)) == 0


def rpc_chain_id(url: str, timeout: float = 1.0) -> int | None:
    """The chain id the node at ``url`` answers, or None if nothing (or nothing sensible) answers."""
    try:
        return int(str(_rpc(url, "eth_chainId", timeout=timeout)), 16)
    except (OSError, urllib.error.URLError, ValueError, KeyError, AnvilError):
        return None


def _rpc(url: str, method: str, params: list | None = None, timeout: float = 2.0) -> object:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        reply = json.load(resp)
    if "error" in reply:
        raise AnvilError(f"{method} failed: {reply['error']}")
    return reply["result"]


def anvil_argv(
    port: int,
    *,
    chain_id: int = DEFAULT_CHAIN_ID,
    accounts: int = len(DEV_KEYS),
    block_time: int | None = None,
    mixed_mining: bool = False,
    extra_args: tuple[str, ...] = (),
) -> list[str]:
    """The command line of an anvil on 127.0.0.1:``port`` (every anvil veritrain starts, tests and devnet)."""
    return [
        str(foundry_tool("anvil")),
        "--host", HOST,
        "--port", str(port),
        "--chain-id", str(chain_id),
        "--accounts", str(accounts),
        *(["--block-time", str(block_time)] if block_time else []),
        *(["--mixed-mining"] if mixed_mining else []),
        *extra_args,
    ]  # fmt: skip


class Anvil:
    """An anvil process on 127.0.0.1; use as a context manager (or call :meth:`start`/:meth:`stop`)."""

    def __init__(
        self,
        *,
        port: int | None = None,
        chain_id: int = DEFAULT_CHAIN_ID,
        accounts: int = len(DEV_KEYS),
        block_time: int | None = None,
        extra_args: tuple[str, ...] = (),
        startup_timeout: float = 30.0,
    ) -> None:
        self.requested_port = port
        self.port: int | None = None
        self.chain_id = chain_id
        self.accounts = accounts
        self.block_time = block_time
        self.extra_args = extra_args
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._log: tempfile._TemporaryFileWrapper[bytes] | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise AnvilError("anvil is not running")
        return f"http://{HOST}:{self.port}"

    def web3(self, timeout: float = 30.0) -> Web3:
        """A web3 client on this node. It caches only the answers that cannot change for one node (chain id,
        client version), which halves the requests web3 makes per call; blocks are never cached, so
        ``anvil_reorg`` and snapshot/revert stay visible."""
        provider = Web3.HTTPProvider(
            self.url,
            request_kwargs={"timeout": timeout},
            cache_allowed_requests=True,
            cacheable_requests=_IMMUTABLE_REQUESTS,
        )
        return Web3(provider)

    def log_tail(self, limit: int = 4000) -> str:
        """The end of anvil's output (for error messages)."""
        if self._log is None:
            return ""
        path = Path(self._log.name)
        return path.read_bytes()[-limit:].decode("utf-8", "replace") if path.exists() else ""

    def start(self) -> Anvil:
        attempts = 1 if self.requested_port else 3
        for attempt in range(attempts):
            self.port = self.requested_port or free_port()
            cmd = anvil_argv(
                self.port,
                chain_id=self.chain_id,
                accounts=self.accounts,
                block_time=self.block_time,
                extra_args=self.extra_args,
            )
            self._log = tempfile.NamedTemporaryFile(prefix="anvil-", suffix=".log", delete=False)
            self.process = subprocess.Popen(
                cmd,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            try:
                self._wait_ready()
                return self
            except AnvilError:
                tail = self.log_tail()
                self.stop()
                if "in use" in tail.lower() and attempt + 1 < attempts:
                    continue  # another process took the port between probe and bind; try a new one
                raise
        raise AnvilError("could not start anvil")  # pragma: no cover - loop always returns or raises

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.process.poll() is not None:
                raise AnvilError(f"anvil exited with code {self.process.returncode}:\n{self.log_tail()}")
            chain_id = rpc_chain_id(self.url)
            if chain_id is not None:
                if chain_id != self.chain_id:
                    raise AnvilError(f"something else answers on {self.url} (chain id {chain_id})")
                return
            if time.monotonic() > deadline:
                raise AnvilError(f"anvil did not answer on {self.url} within {self.startup_timeout}s")
            time.sleep(0.05)

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)  # its own session: no strays
            except ProcessLookupError:  # pragma: no cover
                pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            Path(self._log.name).unlink(missing_ok=True)
            self._log = None

    def __enter__(self) -> Anvil:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


# ---------------------------------------------------------------- test helpers


def mine(w3: Web3, blocks: int = 1) -> int:
    """Mines ``blocks`` empty blocks; returns the new block number."""
    for _ in range(blocks):
        w3.provider.make_request(RPCEndpoint("evm_mine"), [])
    return int(w3.eth.block_number)


def mine_past(w3: Web3, block_number: int) -> int:
    """Mines until the latest block is *after* ``block_number``; returns the new block number.

    A seed block (``Job.seedBlock``, ``Dispute.seedBlock``) counts as usable when ``block.number >
    seedBlock``; gas estimation runs against the latest mined block, so that block itself must be past it.
    """
    while (current := int(w3.eth.block_number)) <= block_number:
        mine(w3, block_number + 1 - current)
    return current


def increase_time(w3: Web3, seconds: int, *, mine_block: bool = True) -> int:
    """Moves the chain's clock forward by ``seconds`` (and mines a block so it takes effect); returns the
    latest block's timestamp."""
    w3.provider.make_request(RPCEndpoint("evm_increaseTime"), [int(seconds)])
    if mine_block:
        mine(w3)
    return int(w3.eth.get_block("latest")["timestamp"])
