"""rewardherd.serve stays thin: cheap to import, and built on models and core only (plus the
names of rewardherd.schema)."""

import json
import subprocess
import sys


def _modules_after(code: str) -> list[str]:
    probe = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_serve_and_its_cli_load_no_web_or_model_stack():
    modules = _modules_after("import rewardherd.serve, rewardherd.serve.cli")
    heavy = [m for m in modules if m.split(".")[0] in ("fastapi", "uvicorn", "starlette", "torch", "transformers")]
    assert heavy == [], heavy


def test_the_app_depends_only_on_models_and_core():
    modules = _modules_after("import rewardherd.serve.app")
    ours = {".".join(m.split(".")[:2]) for m in modules if m.startswith("rewardherd.")}
    # rewardherd.schema: the shared names (extra_logs keys), a leaf module with no imports
    assert ours <= {"rewardherd.serve", "rewardherd.models", "rewardherd.core", "rewardherd.schema"}, sorted(ours)
    assert "fastapi" in modules
