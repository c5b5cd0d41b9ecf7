"""The package layering of DESIGN §2, enforced on every import statement (top level and inside functions):
``protocol`` imports none of ``solver``, ``verifier``, ``marketplace_api``, ``veritrain``; those three node
packages never import each other (``veritrain``, the CLI, wires them together and may import all)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("protocol", "solver", "verifier", "marketplace_api", "veritrain")
FORBIDDEN = {
    "protocol": {"solver", "verifier", "marketplace_api", "veritrain"},
    "solver": {"verifier", "marketplace_api", "veritrain"},
    "verifier": {"solver", "marketplace_api", "veritrain"},
    "marketplace_api": {"solver", "verifier", "veritrain"},
}


def imported_packages(path: Path) -> set[tuple[str, int]]:
    """Top-level package of every absolute import in ``path``, with its line."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {(a.name.split(".")[0], node.lineno) for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add((node.module.split(".")[0], node.lineno))
    return out


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_what_its_layer_allows(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no Python files under {package}/"
    bad = [
        f"{f.relative_to(ROOT)}:{line} imports {name}"
        for f in files
        for name, line in sorted(imported_packages(f))
        if name in FORBIDDEN[package]
    ]
    assert not bad, "layering broken (DESIGN §2):\n" + "\n".join(bad)


def test_the_checker_sees_imports_inside_functions(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from verifier.audit import Replayer\n    import solver.node\n")
    assert imported_packages(f) == {("verifier", 2), ("solver", 3)}
