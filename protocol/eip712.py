"""EIP-712 typed data for ``JobOrder`` and ``Bid`` (DESIGN.md §6), byte-exact with ``JobMarket.sol``, and
the off-chain ``SolverProfile`` and ``BidEta`` the marketplace API checks (same domain; no contract reads them).

The field lists below are the only Python copy of the type strings in ``JobMarket.JOB_ORDER_TYPEHASH`` and
``BID_TYPEHASH``; a test checks the type hashes and the digests against the contract. The domain is name
``veritrain``, version ``1``, the chain id and the JobMarket address. Signatures are 65 bytes
``r ‖ s ‖ v`` with ``v`` in {27, 28}, which OpenZeppelin's ``SignatureChecker`` accepts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from typing import Any, ClassVar

from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_keys import keys
from eth_utils import keccak, to_checksum_address

DOMAIN_NAME = "veritrain"
DOMAIN_VERSION = "1"

DOMAIN_FIELDS = (
    ("name", "string"),
    ("version", "string"),
    ("chainId", "uint256"),
    ("verifyingContract", "address"),
)
JOB_ORDER_FIELDS = (
    ("submitter", "address"),
    ("specHash", "bytes32"),
    ("datasetHash", "bytes32"),
    ("initStateRoot", "bytes32"),
    ("totalSteps", "uint64"),
    ("checkpointInterval", "uint64"),
    ("maxPrice", "uint256"),
    ("deadline", "uint64"),
    ("nonce", "uint256"),
)
BID_FIELDS = (
    ("solver", "address"),
    ("orderHash", "bytes32"),
    ("price", "uint256"),
    ("stake", "uint256"),
    ("expiry", "uint64"),
    ("nonce", "uint256"),
    ("workTime", "uint64"),
)
#: Off-chain only (the marketplace API checks them; no contract does): a solver's capability profile,
#: signed over the SHA-256 of the profile document's canonical JSON, and a bid's ETA.
SOLVER_PROFILE_FIELDS = (
    ("solver", "address"),
    ("profileHash", "bytes32"),
    ("issuedAt", "uint64"),
)
BID_ETA_FIELDS = (
    ("solver", "address"),
    ("bidHash", "bytes32"),
    ("etaSeconds", "uint64"),
)


def encode_type(primary: str, type_fields: tuple[tuple[str, str], ...]) -> str:
    """EIP-712 ``encodeType`` of a struct without nested structs, e.g. ``Bid(address solver,...)``."""
    return f"{primary}(" + ",".join(f"{t} {n}" for n, t in type_fields) + ")"


def type_hash(primary: str, type_fields: tuple[tuple[str, str], ...]) -> bytes:
    """keccak256 of :func:`encode_type`: ``JobMarket.JOB_ORDER_TYPEHASH`` / ``BID_TYPEHASH``."""
    return keccak(text=encode_type(primary, type_fields))


@dataclass(frozen=True)
class Domain:
    """The EIP-712 domain of one JobMarket deployment."""

    chain_id: int
    verifying_contract: str
    name: str = DOMAIN_NAME
    version: str = DOMAIN_VERSION

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "chainId": self.chain_id,
            "verifyingContract": to_checksum_address(self.verifying_contract),
        }


class _Typed:
    """Shared behaviour of the two signed structs (field order = the type string's)."""

    PRIMARY_TYPE: ClassVar[str]
    FIELDS: ClassVar[tuple[tuple[str, str], ...]]
    #: every subclass is a dataclass (declared so that type checkers accept ``asdict(self)``)
    __dataclass_fields__: ClassVar[dict[str, Any]]

    def as_message(self) -> dict[str, Any]:
        """The struct as an EIP-712 message dict (addresses checksummed, hashes as bytes)."""
        out: dict[str, Any] = {}
        for name, typ in self.FIELDS:
            value = getattr(self, name)
            out[name] = to_checksum_address(value) if typ == "address" else value
        return out

    def as_json(self) -> dict[str, Any]:
        """The struct as the marketplace API takes it in JSON: bytes32 as 0x-hex, uint256 as a decimal string
        (JSON numbers lose precision above 2^53), smaller integers as numbers, addresses checksummed."""
        out: dict[str, Any] = {}
        for name, typ in self.FIELDS:
            value = getattr(self, name)
            if typ == "address":
                out[name] = to_checksum_address(value)
            elif typ == "bytes32":
                out[name] = "0x" + bytes(value).hex()
            elif typ == "uint256":
                out[name] = str(int(value))
            else:
                out[name] = int(value)
        return out

    def as_abi_tuple(self) -> tuple[Any, ...]:
        """The struct as the tuple web3 passes to ``acceptBid`` / ``hashOrder`` / ``hashBid``."""
        return tuple(self.as_message()[name] for name, _ in self.FIELDS)

    def typed_data(self, domain: Domain) -> dict[str, Any]:
        """The full EIP-712 document (``types``, ``primaryType``, ``domain``, ``message``)."""
        return {
            "types": {
                "EIP712Domain": [{"name": n, "type": t} for n, t in DOMAIN_FIELDS],
                self.PRIMARY_TYPE: [{"name": n, "type": t} for n, t in self.FIELDS],
            },
            "primaryType": self.PRIMARY_TYPE,
            "domain": domain.as_dict(),
            "message": self.as_message(),
        }

    def signable(self, domain: Domain) -> SignableMessage:
        return encode_typed_data(full_message=self.typed_data(domain))

    def struct_hash(self) -> bytes:
        """keccak256(typeHash ‖ abi.encode(fields…)) — every field is a static ABI type, so this is
        EIP-712 ``hashStruct`` exactly (tests compare it with eth-account's encoder and the contract)."""
        values = [getattr(self, name) for name, _ in self.FIELDS]
        return keccak(
            abi_encode(["bytes32", *(t for _, t in self.FIELDS)], [_type_hash(self.PRIMARY_TYPE, self.FIELDS), *values])
        )

    def digest(self, domain: Domain) -> bytes:
        """keccak256(0x19 0x01 ‖ domainSeparator ‖ structHash): the value the contract signs over.

        Computed directly (cached domain separator, one ABI encode) rather than through eth-account's generic
        typed-data encoder, which is ~50x slower; :meth:`signable` gives the same bytes the slow way."""
        return keccak(b"\x19\x01" + domain_separator(domain) + self.struct_hash())

    def sign(self, domain: Domain, private_key: Any) -> bytes:
        """65-byte signature ``r ‖ s ‖ v`` by ``private_key`` (hex, bytes or a LocalAccount)."""
        key = getattr(private_key, "key", private_key)
        return bytes(Account.sign_message(self.signable(domain), private_key=key).signature)

    def recover(self, domain: Domain, signature: bytes) -> str:
        """Checksummed address that made ``signature`` (65 bytes ``r ‖ s ‖ v``, v in {27, 28}) over this
        struct. Raises ValueError for a malformed signature."""
        return recover_digest(self.digest(domain), signature)

    def replace(self, **changes: Any) -> Any:
        """A copy with some fields changed."""
        return type(self)(**{**asdict(self), **changes})


@dataclass(frozen=True)
class JobOrder(_Typed):
    """A submitter's signed training job (``IJobMarket.JobOrder``). Its digest is the job id."""

    submitter: str
    specHash: bytes
    datasetHash: bytes
    initStateRoot: bytes
    totalSteps: int
    checkpointInterval: int
    maxPrice: int
    deadline: int
    nonce: int

    PRIMARY_TYPE = "JobOrder"
    FIELDS = JOB_ORDER_FIELDS


@dataclass(frozen=True)
class Bid(_Typed):
    """A solver's signed offer on one order (``IJobMarket.Bid``); ``orderHash`` is the order's digest.
    ``workTime`` is the seconds the solver needs from acceptance to commit: the contract accepts the bid only
    while ``now + workTime <= order.deadline`` (``TooLateToAccept`` otherwise)."""

    solver: str
    orderHash: bytes
    price: int
    stake: int
    expiry: int
    nonce: int
    workTime: int

    PRIMARY_TYPE = "Bid"
    FIELDS = BID_FIELDS


@dataclass(frozen=True)
class SolverProfile(_Typed):
    """A solver's signed capability profile (off-chain). ``profileHash`` is the SHA-256 of the profile
    document's canonical JSON (measured exact-mode throughput per example model); ``issuedAt`` is unix
    seconds, and a newer profile replaces an older one (so an old signed profile cannot be replayed)."""

    solver: str
    profileHash: bytes
    issuedAt: int

    PRIMARY_TYPE = "SolverProfile"
    FIELDS = SOLVER_PROFILE_FIELDS


@dataclass(frozen=True)
class BidEta(_Typed):
    """A solver's signed promise of when it would commit a job (off-chain): ``etaSeconds`` after the
    bid is accepted. Bound to one bid by ``bidHash`` (the bid's EIP-712 digest)."""

    solver: str
    bidHash: bytes
    etaSeconds: int

    PRIMARY_TYPE = "BidEta"
    FIELDS = BID_ETA_FIELDS


@lru_cache(maxsize=64)
def domain_separator(domain: Domain) -> bytes:
    """hashStruct(EIP712Domain) of ``domain`` (``JobMarket.domainSeparator()``)."""
    return keccak(
        abi_encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [
                type_hash("EIP712Domain", DOMAIN_FIELDS),
                keccak(text=domain.name),
                keccak(text=domain.version),
                domain.chain_id,
                to_checksum_address(domain.verifying_contract),
            ],
        )
    )


@lru_cache(maxsize=16)
def _type_hash(primary_type: str, fields: tuple[tuple[str, str], ...]) -> bytes:
    return type_hash(primary_type, fields)


def recover_digest(digest: bytes, signature: bytes) -> str:
    """Checksummed signer of a 32-byte ``digest`` from a 65-byte ``r ‖ s ‖ v`` signature (v in {27, 28})."""
    return to_checksum_address(recover_digest_raw(digest, signature))


def recover_digest_raw(digest: bytes, signature: bytes) -> bytes:
    """The signer's 20-byte address (not checksummed: one keccak less than :func:`recover_digest`)."""
    if len(signature) != 65 or signature[64] not in (27, 28):
        raise ValueError("signature must be 65 bytes r ‖ s ‖ v with v = 27 or 28")
    sig = keys.Signature(signature_bytes=bytes(signature[:64]) + bytes([signature[64] - 27]))
    return sig.recover_public_key_from_msg_hash(digest).to_canonical_address()


def signable_digest(message: SignableMessage) -> bytes:
    """The 32-byte EIP-191 digest of an encoded message: keccak256(0x19 ‖ version ‖ header ‖ body)."""
    return keccak(b"\x19" + message.version + message.header + message.body)


def _check_fields() -> None:
    for cls in (JobOrder, Bid, SolverProfile, BidEta):
        names = tuple(f.name for f in fields(cls))
        if names != tuple(n for n, _ in cls.FIELDS):  # pragma: no cover - a programming error
            raise AssertionError(f"{cls.__name__} dataclass fields differ from its EIP-712 type")


_check_fields()
