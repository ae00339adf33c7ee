"""The README's care updates walk-through runs as pasted after the main walk-through, against a
real `make run` (tests/flows/test_readme_walkthrough.py): the treatment service's update reaches
probation without the clinical detail, then with it once the person consents."""

from __future__ import annotations

import re
import subprocess

from tests.flows.test_readme_walkthrough import ADDRESS, ROOT, served, shell_blocks  # noqa: F401

SECTION = "## Care updates: sharing back, from the treatment service's side"


def care_update_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    start = text.index(SECTION)
    part = text[start : text.index("\n## ", start + len(SECTION))]
    return re.findall(r"```sh\n(.*?)```", part, flags=re.DOTALL)


def test_the_care_updates_walk_through_runs_as_pasted(served) -> None:  # noqa: F811
    address, env, clone = served
    blocks = [*shell_blocks(), *care_update_blocks()]
    script, changed = ADDRESS.subn(f"exchange={address}", "\n".join(blocks))
    assert changed == 1
    ran = subprocess.run(
        ["bash", "-e", "-u", "-o", "pipefail", "-c", script],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "/problems/" not in ran.stdout  # no call was answered with a problem
    out = ran.stdout
    first = out.index('"reason": "consent_not_given"')
    assert out.index("Wants a reduction plan for Spice", first) > first  # sent once consented
    assert '"treatment_to_probation"' in out and '"revoked": [' in out  # the withdrawal
