"""protocol/constants.py mirrors the contracts' enums member by member (and the contracts' unit constants)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from protocol import constants
from protocol.constants import SOLIDITY_ENUMS, Outcome, api_name, enum_name, solidity_to_python_name

SRC = Path(__file__).resolve().parents[1] / "contracts" / "src"

_CONTAINER = re.compile(r"^\s*(?:abstract\s+)?(?:interface|contract|library)\s+(\w+)", re.M)
_ENUM = re.compile(r"\benum\s+(\w+)\s*\{([^}]*)\}", re.S)


def _strip_comments(text: str) -> str:
    return re.sub(r"//[^\n]*|/\*.*?\*/", "", text, flags=re.S)


def solidity_enums() -> dict[str, list[str]]:
    """Every enum declared in contracts/src, as ``Container.Enum`` → member names in declaration order."""
    out: dict[str, list[str]] = {}
    for path in sorted(SRC.rglob("*.sol")):
        text = _strip_comments(path.read_text())
        containers = [(m.start(), m.group(1)) for m in _CONTAINER.finditer(text)]
        for m in _ENUM.finditer(text):
            owner = [name for start, name in containers if start < m.start()]
            qualified = f"{owner[-1]}.{m.group(1)}" if owner else m.group(1)
            members = [x.strip() for x in m.group(2).split(",") if x.strip()]
            assert qualified not in out, f"enum {qualified} declared twice ({path})"
            out[qualified] = members
    return out


def test_every_solidity_enum_has_a_python_mirror_and_back():
    sol = solidity_enums()
    assert sol, "no enum found in contracts/src: the parser is broken"
    assert set(sol) == set(SOLIDITY_ENUMS), (
        f"only in Solidity: {sorted(set(sol) - set(SOLIDITY_ENUMS))}; "
        f"only in protocol/constants.py: {sorted(set(SOLIDITY_ENUMS) - set(sol))}"
    )


@pytest.mark.parametrize("qualified", sorted(SOLIDITY_ENUMS))
def test_python_enum_equals_solidity_member_by_member(qualified):
    sol = solidity_enums()[qualified]
    py = SOLIDITY_ENUMS[qualified]
    assert [(m.value, m.name) for m in py] == [(i, solidity_to_python_name(n)) for i, n in enumerate(sol)], (
        f"{qualified}: Solidity {sol} vs Python {[m.name for m in py]}"
    )


def test_unit_constants_equal_the_contracts():
    slash_split = (SRC / "libraries" / "SlashSplit.sol").read_text()
    assert re.search(r"uint256 internal constant BPS = 10_?000;", slash_split)
    assert constants.BPS == 10_000
    assert constants.WEI_PER_TOKEN == 10**constants.TOKEN_DECIMALS == 10**18


def test_api_names_come_from_the_enum_and_abi_types_map_to_them():
    assert api_name(Outcome.NO_DECISION) == "no_decision"
    assert enum_name("enum IDisputeGame.Outcome", 2) == "challenger_won"
    assert enum_name("enum IDisputeGame.Outcome", 9) is None
    assert enum_name("uint8", 2) is None
