"""Member training under `accelerate launch` (the path to many GPUs), here 2 CPU processes.

`accelerate launch --cpu` starts a single process unless an MPI hostfile is given, so the
test uses accelerate's torchrun launcher (`--multi_gpu --num_processes 2`); TRL's
`use_cpu=True` then makes the processes a MULTI_CPU (gloo) group. The member trained by
two processes must load and reach held-out accuracy comparable to a one-process run.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rewardherd.data import write_preferences
from rewardherd.models import Ensemble
from rewardherd.models.tiny import build_saved_backbones, rule_labelled_pairs

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def _train(cmd_prefix, data, backbone, out, env):
    cmd = cmd_prefix + ["train", "--data", str(data), "--backbone", str(backbone), "--members", "1", "--out", str(out),
                        "--epochs", "2", "--lr", "2e-3", "--no-progress"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads((out / "ensemble.json").read_text())["members"][0]


def test_two_process_member_matches_single_process(tmp_path):
    backbone = build_saved_backbones(tmp_path, [0])[0]
    data = tmp_path / "prefs.jsonl"
    write_preferences(rule_labelled_pairs(300, seed=5), data)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "MASTER_PORT": "29517"}
    accelerate = str(Path(sys.executable).with_name("accelerate"))
    multi = _train([accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                    "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29517",
                    "--module", "rewardherd.cli"], data, backbone, tmp_path / "multi", env)
    single = _train([sys.executable, "-m", "rewardherd.cli"], data, backbone, tmp_path / "single", env)
    assert multi["train_config"]["num_processes"] == 2
    assert single["train_config"]["num_processes"] == 1
    assert multi["heldout_accuracy"] >= 0.9
    assert abs(multi["heldout_accuracy"] - single["heldout_accuracy"]) <= 0.1
    ens = Ensemble.load(tmp_path / "multi")
    scores = ens.score(["item 1: ", "item 1: "], ["good happy kind", "sad dark cold"])
    assert scores[0, 0] > scores[0, 1]
