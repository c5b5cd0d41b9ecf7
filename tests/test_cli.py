"""The ``veritrain`` entry point: version and help, in-process and as the installed script."""

import json
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from typer.testing import CliRunner

from veritrain import __version__
from veritrain.cli import app

runner = CliRunner()


def _installed_script() -> str:
    """The console script next to this interpreter (the venv's), else the one on PATH."""
    beside = Path(sys.executable).parent / "veritrain"
    if beside.is_file():
        return str(beside)
    found = shutil.which("veritrain")
    assert found, "the veritrain console script is not installed; run `make setup`"
    return found


def test_version_comes_from_package_metadata():
    assert __version__ == version("veritrain")


def test_version_option_prints_version_and_exits_zero():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"veritrain {version('veritrain')}"


def test_help_describes_the_tool():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    assert "verifiable decentralized ML training marketplace" in result.output
    assert "--version" in result.output


def test_no_arguments_prints_help():
    result = runner.invoke(app, [])
    assert result.exit_code == 0, result.output
    assert "verifiable decentralized ML training marketplace" in result.output


def test_installed_console_script_prints_version():
    proc = subprocess.run([_installed_script(), "--version"], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"veritrain {version('veritrain')}"


def test_bench_hash_json_reports_both_throughputs_and_their_ratio():
    result = CliRunner().invoke(app, ["bench", "hash", "--size-mib", "8", "--repeats", "1", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) == {"bytes", "sha256_raw_gbps", "state_root_gbps", "ratio"}
    assert data["bytes"] >= 8 << 20
    assert data["sha256_raw_gbps"] > 0 and data["state_root_gbps"] > 0
    assert abs(data["ratio"] - data["state_root_gbps"] / data["sha256_raw_gbps"]) < 0.01
