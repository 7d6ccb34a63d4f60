"""rewardherd.core stays pure: importing it pulls in no heavy or outer-layer modules."""

import json
import subprocess
import sys

FORBIDDEN = ("transformers", "datasets", "matplotlib", "ray", "fastapi", "trl", "wandb")

_PROBE = """
import json, sys
import rewardherd.core
print(json.dumps(sorted(sys.modules)))
"""


def _modules_after_import() -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_core_loads_no_heavy_libraries():
    modules = _modules_after_import()
    loaded = [m for m in modules if m.split(".")[0] in FORBIDDEN]
    assert loaded == [], loaded
    # core never reaches up into the other layers of the package either
    outer = [m for m in modules if m.startswith("rewardherd.") and not m.startswith("rewardherd.core")]
    assert outer == [], outer
    assert "rewardherd.core" in modules
