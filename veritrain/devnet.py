"""A local devnet: anvil on 127.0.0.1 + the protocol deployed with ``contracts/params/devnet.json`` + VeriToken
minted to every dev account (+ optionally the marketplace API with its indexer).

State lives under ``VERITRAIN_HOME`` (default ``.veritrain/`` in the working directory):

* ``devnet.json``: rpc url, chain id, the anvil (and API) pids, and the dev accounts by role name
  (``deployer``, ``user``, ``solver0``…, ``verifier0``…). These are anvil's public, well-known dev keys
  (the mnemonic ``test … junk``): never use them on a public chain.
* ``deployment.json``: the deployment (addresses, start block, parameters) every node reads.
* ``anvil.log``, ``api.log``, ``api/`` (the API's SQLite database and blob store).

anvil runs with ``--block-time 1 --mixed-mining``: a transaction is mined at once, and a block is also mined
every second without traffic, so the chain's clock moves and audit windows close on their own.

:func:`start_devnet` either detaches the processes (``veritrain devnet up``: they outlive the command; stop
them with :func:`stop_devnet`) or hands them to a :class:`~veritrain.procs.Supervisor` (the demo, tests), which
ends them with the supervisor.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from protocol.anvil import anvil_argv, dev_key, free_port, port_in_use, rpc_chain_id
from protocol.atomic import atomic_write_json
from protocol.constants import WEI_PER_TOKEN
from protocol.deploy import Deployment, deploy, load_deployment
from protocol.errors import VeritrainError
from protocol.paths import repo_root
from veritrain.procs import Supervisor, kill_group, log_tail, pid_alive

HOME_ENV = "VERITRAIN_HOME"
DEFAULT_HOME = ".veritrain"
DEFAULT_PORT = 8545
DEFAULT_API_PORT = 8000
CHAIN_ID = 31337
#: Dev accounts by role: index 0 deploys (and owns VeriToken), 1 submits jobs, then solvers, then verifiers.
NUM_ACCOUNTS = 20
NUM_SOLVERS = 5
NUM_VERIFIERS = 10
#: VeriToken minted to every dev account at ``devnet up``.
MINT_PER_ACCOUNT = 1_000_000 * WEI_PER_TOKEN
FORMAT = 1


class DevnetError(VeritrainError, RuntimeError):
    """The devnet is not running, cannot start, or its files are damaged."""


def veritrain_home(home: str | os.PathLike[str] | None = None) -> Path:
    """``home``, else ``$VERITRAIN_HOME``, else ``./.veritrain`` (absolute)."""
    return Path(home or os.environ.get(HOME_ENV) or DEFAULT_HOME).expanduser().resolve()


def devnet_params_path() -> Path:
    return repo_root() / "contracts" / "params" / "devnet.json"


def role_names(count: int = NUM_ACCOUNTS) -> list[str]:
    """Role name of each dev account index: deployer, user, solver0.., verifier0.., account<i>."""
    names = ["deployer", "user"]
    names += [f"solver{i}" for i in range(NUM_SOLVERS)]
    names += [f"verifier{i}" for i in range(NUM_VERIFIERS)]
    names += [f"account{i}" for i in range(len(names), count)]
    return names[:count]


def _http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status == 200
    except (OSError, urllib.error.URLError, ValueError):
        return False


@dataclass
class Devnet:
    """A running devnet, as recorded in ``<home>/devnet.json``."""

    home: Path
    rpc_url: str
    chain_id: int
    anvil_pid: int
    accounts: dict[str, dict[str, Any]]  # role → {"index", "address", "key"}
    api_url: str | None = None
    api_pid: int | None = None
    detached: bool = True
    started_at: float = field(default_factory=time.time)

    @property
    def deployment_path(self) -> Path:
        return self.home / "deployment.json"

    @property
    def path(self) -> Path:
        return self.home / "devnet.json"

    @cached_property
    def deployment(self) -> Deployment:
        return load_deployment(self.deployment_path)

    def account(self, role: str) -> LocalAccount:
        """The signer of a role (``user``, ``solver0``, ``verifier3``, …)."""
        try:
            return Account.from_key(self.accounts[role]["key"])
        except KeyError:
            raise DevnetError(f"the devnet has no account {role!r}; roles: {', '.join(self.accounts)}") from None

    def address(self, role: str) -> str:
        return self.account(role).address

    def role_of(self, address: str) -> str | None:
        for role, a in self.accounts.items():
            if a["address"].lower() == address.lower():
                return role
        return None

    def web3(self, timeout: float = 30.0) -> Web3:
        return Web3(Web3.HTTPProvider(self.rpc_url, request_kwargs={"timeout": timeout}))

    def to_json(self) -> dict[str, Any]:
        return {
            "version": FORMAT,
            "_warning": "anvil's public dev keys: devnet only, never on a public chain",
            "rpc_url": self.rpc_url,
            "chain_id": self.chain_id,
            "anvil_pid": self.anvil_pid,
            "api_url": self.api_url,
            "api_pid": self.api_pid,
            "detached": self.detached,
            "started_at": self.started_at,
            "deployment": str(self.deployment_path),
            "accounts": self.accounts,
        }

    def public_json(self) -> dict[str, Any]:
        """:meth:`to_json` without the keys (for ``status``)."""
        data = self.to_json()
        data["accounts"] = {r: a["address"] for r, a in self.accounts.items()}
        data.pop("_warning")
        return data

    @classmethod
    def from_json(cls, home: Path, data: dict[str, Any]) -> Devnet:
        try:
            if data.get("version") != FORMAT:
                raise ValueError(f"format {data.get('version')!r}")
            return cls(
                home=home,
                rpc_url=str(data["rpc_url"]),
                chain_id=int(data["chain_id"]),
                anvil_pid=int(data["anvil_pid"]),
                accounts=dict(data["accounts"]),
                api_url=data.get("api_url"),
                api_pid=data.get("api_pid"),
                detached=bool(data.get("detached", True)),
                started_at=float(data.get("started_at", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DevnetError(
                f"{home / 'devnet.json'} is damaged ({exc!r}); run `veritrain devnet down` and `veritrain devnet up`"
            ) from exc

    def save(self) -> None:
        atomic_write_json(self.path, self.to_json())
        with contextlib.suppress(OSError):
            os.chmod(self.path, 0o600)


def _dev_accounts(count: int) -> dict[str, dict[str, Any]]:
    out = {}
    for index, role in enumerate(role_names(count)):
        key = dev_key(index)
        out[role] = {"index": index, "address": Account.from_key(key).address, "key": key}
    return out


def _launch(
    name: str,
    argv: list[str],
    home: Path,
    ready: Any,
    supervisor: Supervisor | None,
    timeout: float,
    env: dict[str, str] | None = None,
) -> int:
    """Starts a devnet process: under ``supervisor`` (dies with it) or detached (its own session, survives
    this command); waits for ``ready()``; returns its pid."""
    if supervisor is not None:
        return supervisor.start(name, argv, ready=ready, timeout=timeout, env=env).pid
    log_path = home / f"{name}.log"
    with open(log_path, "ab") as log:
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
    deadline = time.monotonic() + timeout
    while not ready():
        if popen.poll() is not None:
            raise DevnetError(
                f"{name} exited with code {popen.returncode}; the end of {log_path}:\n{log_tail(log_path)}"
            )
        if time.monotonic() > deadline:
            kill_group(popen.pid, 2.0)
            raise DevnetError(
                f"{name} was not ready within {timeout:.0f}s; the end of {log_path}:\n{log_tail(log_path)}"
            )
        time.sleep(0.1)
    return popen.pid


def devnet_anvil_argv(port: int, accounts: int = NUM_ACCOUNTS, block_time: int = 1) -> list[str]:
    """anvil as the devnet runs it: blocks every ``block_time`` seconds, transactions mined at once."""
    return anvil_argv(port, chain_id=CHAIN_ID, accounts=accounts, block_time=block_time, mixed_mining=True)


def api_argv(devnet: Devnet, port: int) -> list[str]:
    return [
        sys.executable, "-m", "veritrain.cli", "api",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--deployment", str(devnet.deployment_path),
        "--rpc-url", devnet.rpc_url,
        "--data-dir", str(devnet.home / "api"),
        "--indexer",
        "--log-level", "warning",
    ]  # fmt: skip


def api_env() -> dict[str, str]:
    """Environment of an API process on the devnet: confirmations 0 (anvil does not reorg on its own)
    so the job board follows the chain within a second."""
    return {"VERITRAIN_CONFIRMATIONS": "0", "VERITRAIN_INDEXER_INTERVAL_S": "0.5"}


def start_devnet(
    home: str | os.PathLike[str] | None = None,
    *,
    port: int = DEFAULT_PORT,
    accounts: int = NUM_ACCOUNTS,
    params: str | os.PathLike[str] | None = None,
    api: bool = True,
    api_port: int = DEFAULT_API_PORT,
    supervisor: Supervisor | None = None,
    timeout: float = 30.0,
) -> Devnet:
    """Starts anvil (``port`` 0: a free port), builds the contracts if needed, deploys with ``params`` (default
    ``contracts/params/devnet.json``), mints VeriToken to every dev account and, with ``api``, starts the
    marketplace API (+ indexer) on ``api_port`` (0: a free port). Writes ``<home>/devnet.json``.

    Without a ``supervisor`` the processes are detached (``veritrain devnet up``); an already running
    devnet in ``home`` is an error. Every failure stops what was started."""
    from protocol.build import ensure_forge_build

    home = veritrain_home(home)
    home.mkdir(parents=True, exist_ok=True)
    existing = _read(home)
    if existing is not None:
        if pid_alive(existing.anvil_pid) and rpc_chain_id(existing.rpc_url) == existing.chain_id:
            raise DevnetError(
                f"a devnet is already running in {home} ({existing.rpc_url}, anvil pid {existing.anvil_pid}); "
                "use it, or stop it first with `veritrain devnet down`"
            )
        _stop_processes(existing)  # stale: clean up whatever is left
        _clear(home)
    if not 2 + NUM_SOLVERS + NUM_VERIFIERS <= accounts <= 1000:
        raise DevnetError(f"--accounts must be between {2 + NUM_SOLVERS + NUM_VERIFIERS} and 1000")
    if port == 0:
        port = free_port()
    elif port_in_use(port):
        raise DevnetError(
            f"port {port} on 127.0.0.1 is taken (another anvil or devnet?). Stop it, or pick another port "
            "with --port (and pass the new --rpc to the nodes)"
        )
    if api and api_port == 0:
        api_port = free_port()
    elif api and port_in_use(api_port):
        raise DevnetError(
            f"port {api_port} on 127.0.0.1 is taken (another `veritrain api`?). Stop it, pick another one with "
            "--api-port, or start without the API (--no-api)"
        )
    ensure_forge_build()  # ToolMissing says: run `make setup`
    rpc_url = f"http://127.0.0.1:{port}"
    devnet = Devnet(
        home=home,
        rpc_url=rpc_url,
        chain_id=CHAIN_ID,
        anvil_pid=0,
        accounts=_dev_accounts(accounts),
        detached=supervisor is None,
    )
    try:
        devnet.anvil_pid = _launch(
            "anvil",
            devnet_anvil_argv(port, accounts),
            home,
            lambda: rpc_chain_id(rpc_url) == CHAIN_ID,
            supervisor,
            timeout,
        )
        devnet.save()  # from here on `devnet down` can find anvil
        w3 = devnet.web3()
        deployment = deploy(
            w3, devnet.account("deployer"), params or devnet_params_path(), out_path=devnet.deployment_path
        )
        _mint_all(w3, deployment, devnet)
        if api:
            devnet.api_url = f"http://127.0.0.1:{api_port}"
            devnet.api_pid = _launch(
                "api",
                api_argv(devnet, api_port),
                home,
                lambda: _http_ok(f"{devnet.api_url}/health"),
                supervisor,
                max(timeout, 60.0),
                env=api_env(),
            )
        devnet.save()
    except BaseException:
        if supervisor is None:
            _stop_processes(devnet)
        _clear(home)
        raise
    return devnet


def _mint_all(w3: Web3, deployment: Deployment, devnet: Devnet) -> None:
    """Mints :data:`MINT_PER_ACCOUNT` to every account, all transactions sent before any receipt is awaited."""
    deployer = devnet.account("deployer")
    token = deployment.contract(w3, "VeriToken")
    nonce = w3.eth.get_transaction_count(deployer.address, "pending")
    hashes = []
    for i, acct in enumerate(devnet.accounts.values()):
        tx = token.functions.mint(acct["address"], MINT_PER_ACCOUNT).build_transaction(
            {"from": deployer.address, "nonce": nonce + i, "gas": 120_000}
        )
        hashes.append(w3.eth.send_raw_transaction(deployer.sign_transaction(tx).raw_transaction))
    for h in hashes:
        receipt = w3.eth.wait_for_transaction_receipt(h, timeout=60, poll_latency=0.05)
        if receipt["status"] != 1:
            raise DevnetError(f"minting VeriToken failed in transaction {h.hex()}")


def _read(home: Path) -> Devnet | None:
    path = home / "devnet.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise DevnetError(f"{path} is not valid JSON ({exc}); remove {home} and run `veritrain devnet up`") from exc
    return Devnet.from_json(home, data)


def _clear(home: Path) -> None:
    for name in ("devnet.json", "deployment.json"):
        (home / name).unlink(missing_ok=True)
    shutil.rmtree(home / "api", ignore_errors=True)


def _is_ours(pid: int | None, needle: str) -> bool:
    """``pid`` is alive and its command line mentions ``needle`` (guards against a reused pid)."""
    if not pid or not pid_alive(pid):
        return False
    try:
        return needle in Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace")
    except OSError:  # pragma: no cover - non-Linux
        return True


def _stop_processes(devnet: Devnet) -> None:
    if _is_ours(devnet.api_pid, "veritrain"):
        kill_group(int(devnet.api_pid or 0), 5.0)
    if _is_ours(devnet.anvil_pid, "anvil"):
        kill_group(devnet.anvil_pid, 5.0)


def devnet_endpoints(home: str | os.PathLike[str] | None = None) -> tuple[str | None, str | None]:
    """``(rpc_url, api_url)`` of the devnet recorded in ``home`` (``$VERITRAIN_HOME``), ``(None, None)`` if there is
    none: the defaults every command uses before the hard-coded 127.0.0.1:8545 / :8000."""
    try:
        devnet = _read(veritrain_home(home))
    except DevnetError:
        return None, None
    return (devnet.rpc_url, devnet.api_url) if devnet else (None, None)


def load_devnet(home: str | os.PathLike[str] | None = None, *, check: bool = True) -> Devnet:
    """The devnet recorded in ``home``; with ``check``, also that anvil answers with the right chain id.
    Raises :class:`DevnetError` saying to run ``veritrain devnet up`` when there is none."""
    home = veritrain_home(home)
    devnet = _read(home)
    if devnet is None:
        raise DevnetError(f"no devnet in {home}: start one with `veritrain devnet up` (or set {HOME_ENV})")
    if check and rpc_chain_id(devnet.rpc_url) != devnet.chain_id:
        raise DevnetError(
            f"the devnet recorded in {home} is not running (nothing answers at {devnet.rpc_url}); "
            "run `veritrain devnet down` then `veritrain devnet up`"
        )
    return devnet


def stop_devnet(home: str | os.PathLike[str] | None = None) -> bool:
    """Stops the devnet's processes and removes its files; returns whether there was one."""
    home = veritrain_home(home)
    devnet = _read(home)
    if devnet is None:
        return False
    _stop_processes(devnet)
    _clear(home)
    return True


def devnet_status(home: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """``{"running": bool, "home", ...devnet fields without keys, "block", "api_healthy"}``."""
    home = veritrain_home(home)
    devnet = _read(home)
    if devnet is None:
        return {"running": False, "home": str(home)}
    chain_ok = rpc_chain_id(devnet.rpc_url) == devnet.chain_id
    out: dict[str, Any] = {"running": chain_ok, "home": str(home), **devnet.public_json()}
    if chain_ok:
        with contextlib.suppress(Exception):
            out["block"] = int(devnet.web3(timeout=2).eth.block_number)
    if devnet.api_url:
        out["api_healthy"] = _http_ok(f"{devnet.api_url}/health")
    return out


__all__ = [
    "Devnet",
    "DevnetError",
    "load_devnet",
    "start_devnet",
    "stop_devnet",
    "devnet_endpoints",
    "devnet_status",
    "veritrain_home",
]
