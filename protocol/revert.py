"""Decode revert data into the Solidity custom error that caused it.

web3.py 8 raises ``ContractCustomError`` whose ``data`` is the raw revert data (``0x`` + 4-byte selector +
ABI-encoded arguments). :class:`RevertDecoder` maps selectors to error names and argument names using the
forge artifacts' ABIs (errors bubble up from nested calls, so it merges every protocol contract's errors)
and turns the data into a :class:`~protocol.errors.ContractRevert`.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any, cast

from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_typing import ABIError
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from eth_utils.abi import abi_to_signature, get_abi_input_names, get_abi_input_types
from hexbytes import HexBytes

from protocol.artifacts import PROTOCOL_CONTRACTS, load_artifact
from protocol.errors import ContractRevert

#: Solidity's built-in errors: ``require(cond, "reason")`` and ``assert``/overflow panics.
_BUILTIN_ERRORS: tuple[dict[str, Any], ...] = (
    {"type": "error", "name": "Error", "inputs": [{"name": "reason", "type": "string"}]},
    {"type": "error", "name": "Panic", "inputs": [{"name": "code", "type": "uint256"}]},
)


class RevertDecoder:
    """Selector → (name, argument names, argument types) over a set of ABIs."""

    def __init__(self, abis: Iterable[Iterable[dict[str, Any]]]) -> None:
        self._errors: dict[bytes, tuple[str, list[str], list[str]]] = {}
        for abi in (*abis, _BUILTIN_ERRORS):
            for entry in abi:
                if entry.get("type") != "error":
                    continue
                err = cast(ABIError, entry)
                selector = function_signature_to_4byte_selector(abi_to_signature(err))
                # an unnamed parameter (``error E(uint256)``) is named by its position, so that no value is lost
                names = [name or f"arg{i}" for i, name in enumerate(get_abi_input_names(err))]
                self._errors.setdefault(selector, (err["name"], names, get_abi_input_types(err)))

    def error_names(self) -> set[str]:
        return {name for name, _, _ in self._errors.values()}

    def selector_of(self, name: str) -> bytes:
        """The 4-byte selector of error ``name`` (KeyError if no ABI has it)."""
        for selector, (known, _, _) in self._errors.items():
            if known == name:
                return selector
        raise KeyError(name)

    def decode(self, data: bytes | str) -> ContractRevert:
        """Decodes raw revert data; unknown selectors give name ``"<unknown>"`` with the raw arguments."""
        raw = bytes(HexBytes(data))
        selector, payload = raw[:4], raw[4:]
        known = self._errors.get(selector)
        if known is None:
            return ContractRevert("<unknown>", {"data": payload}, selector, raw)
        name, arg_names, arg_types = known
        try:
            values = abi_decode(arg_types, payload)
        except DecodingError:  # malformed payload: keep the raw bytes
            return ContractRevert(name, {"data": payload}, selector, raw)
        values = tuple(_normalize(t, v) for t, v in zip(arg_types, values, strict=True))
        return ContractRevert(name, dict(zip(arg_names, values, strict=True)), selector, raw)

    def from_exception(self, exc: BaseException) -> ContractRevert | None:
        """The decoded revert behind a web3 ``ContractLogicError`` (or anything with revert ``data``)."""
        data = getattr(exc, "data", None)
        if isinstance(data, dict):  # some nodes wrap it: {"data": "0x..."}
            data = data.get("data")
        if isinstance(data, str) and data.startswith("Reverted "):
            data = data.split(" ", 1)[1]
        if not data:
            return None
        try:
            return self.decode(data)
        except ValueError:
            return None


def _normalize(abi_type: str, value: Any) -> Any:
    """Checksummed addresses (eth_abi returns them lower-case), also inside arrays."""
    if abi_type == "address":
        return to_checksum_address(value)
    if abi_type.startswith("address[") and isinstance(value, tuple | list):
        return tuple(to_checksum_address(v) for v in value)
    return value


@cache
def _default_decoder(extra: tuple[str, ...]) -> RevertDecoder:
    return RevertDecoder(load_artifact(name).abi for name in (*PROTOCOL_CONTRACTS, *extra))


def default_decoder(*extra_contracts: str) -> RevertDecoder:
    """A decoder over the four protocol contracts' ABIs (plus ``extra_contracts`` artifacts)."""
    return _default_decoder(tuple(extra_contracts))


def decode_revert(exc_or_data: BaseException | bytes | str) -> ContractRevert | None:
    """Convenience: decode an exception's revert data, or raw data, with :func:`default_decoder`."""
    decoder = default_decoder()
    if isinstance(exc_or_data, BaseException):
        return decoder.from_exception(exc_or_data)
    return decoder.decode(exc_or_data)
