"""The README's walkthrough runs as written: every ``sh`` block of its "Walkthroughs" section, top to bottom, as
one bash script (a devnet, a solver, four verifiers, a user's job fetched and loaded in PyTorch, a cheating
solver slashed, both audited). Only the devnet's ports differ (free ones, through the documented
``VERITRAIN_DEVNET_PORT`` / ``VERITRAIN_DEVNET_API_PORT``), and it runs in a scratch folder whose ``.venv`` is
this checkout's."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from protocol.anvil import free_port

ROOT = Path(__file__).resolve().parents[1]


def walkthrough_blocks(readme: str) -> list[str]:
    start = readme.index("\n## Walkthroughs")
    end = readme.index("\n## ", start + 1)
    return re.findall(r"```sh\n(.*?)```", readme[start:end], flags=re.S)


def test_the_walkthrough_has_the_blocks_a_reader_follows():
    blocks = walkthrough_blocks((ROOT / "README.md").read_text())
    text = "\n".join(blocks)
    assert len(blocks) >= 5
    for needle in ("devnet up", "veritrain solver", "veritrain verifier", "job submit", "job fetch", "audit dispute"):
        assert needle in text, needle
    # nodes come before the job that needs them
    assert text.index("veritrain solver") < text.index("job submit") and text.index("veritrain verifier") < text.index(
        "job submit"
    )


@pytest.mark.chain
def test_readme_walkthrough_runs_top_to_bottom(forge_build, tmp_path):
    script = "set -euo pipefail\nset -x\n" + "\n".join(walkthrough_blocks((ROOT / "README.md").read_text()))
    cleanup = "trap 'kill $(jobs -p) 2>/dev/null || true; veritrain devnet down >/dev/null 2>&1 || true' EXIT\n"
    (tmp_path / "walkthrough.sh").write_text(cleanup + script)
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    env = {
        **os.environ,
        "VERITRAIN_DEVNET_PORT": str(free_port()),
        "VERITRAIN_DEVNET_API_PORT": str(free_port()),
        "VERITRAIN_ROOT": str(ROOT),
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("VERITRAIN_HOME", None)
    env.pop("VIRTUAL_ENV", None)
    proc = subprocess.Popen(
        ["bash", "walkthrough.sh"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=900)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail("the README walkthrough did not finish in 15 minutes:\n" + out[-6000:])
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    logs = "".join(f"\n--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted(tmp_path.glob("*.log")))
    assert proc.returncode == 0, out[-8000:] + logs
    assert "finalized" in out and "slashed" in out, out[-4000:]
    assert out.count("PASS: all") >= 3, out[-4000:]  # audit job, audit dispute, audit dispute --record
    assert "the challenger told the truth" in out, out[-4000:]  # --replay of the lazy solver's segment
    assert (tmp_path / "model" / "model.pt").is_file() and (tmp_path / "d1.json").is_file()
    assert not (tmp_path / ".veritrain" / "devnet.json").exists()  # devnet down ran
