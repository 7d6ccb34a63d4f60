"""One vocabulary for ensemble kinds and one column schema (docs/schema.md), used everywhere."""

import re
import typing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import rewardherd
from rewardherd import schema
from rewardherd.models import manifest
from rewardherd.policy.bon import bon_curves, member_columns, score_pool
from rewardherd.training import multihead

SRC = Path(rewardherd.__file__).resolve().parent


def test_one_vocabulary_of_kinds():
    assert schema.KINDS == ("single", "finetune", "pretrain", "explicit", "multi_head")
    assert set(schema.TRAIN_KINDS) <= set(schema.KINDS)
    assert set(typing.get_args(schema.TrainKindOrAlias)) == set(schema.TRAIN_KINDS) | set(schema.KIND_ALIASES)
    assert set(typing.get_args(schema.RLKind)) <= set(schema.KINDS)
    # a study's kinds: manifest kinds, plus lora (finetune members as adapters), warm (one member) and
    # cleaned (finetune members on cleaned data)
    assert set(schema.STUDY_KINDS) - set(schema.KINDS) == {"lora", "warm", "cleaned"}
    assert multihead.KIND in schema.KINDS
    assert manifest.KINDS is schema.KINDS
    assert {schema.canonical_kind(k) for k in schema.KIND_ALIASES} <= set(schema.KINDS)


class _FakeEnsemble:
    names = ["m0", "m1"]

    def score(self, prompts, responses, batch_size=64):
        return np.stack([np.arange(len(prompts), dtype=float), -np.arange(len(prompts), dtype=float)])


def test_best_of_n_tables_follow_the_schema():
    pool = pd.DataFrame({"prompt_id": [0, 0, 1, 1], "sample_id": [0, 1, 0, 1], "prompt": ["p", "p", "q", "q"],
                         "response": ["a", "bb", "c", "dd"]})
    scored = score_pool(pool, _FakeEnsemble(), gold=lambda p, r: np.array([len(x) for x in r], float),
                        features=lambda p, r: pd.DataFrame({"n_chars": [len(x) for x in r]}))
    assert member_columns(scored) == [schema.raw_col("m0"), schema.raw_col("m1")] == ["score/raw/m0", "score/raw/m1"]
    assert {"gold", "feature/n_chars"} <= set(scored.columns)
    curves = bon_curves(scored, member_columns(scored), [rewardherd.core.Aggregation("mean")], [1, 2],
                        values=["gold", "feature/n_chars", "score/raw/m0"])
    assert {"method", "n", "kl", "prompt_id", "proxy", "gold", "feature/n_chars", "score/raw/m0"} == set(curves)


def test_column_helpers():
    assert schema.z_col("m") == "score/z/m" and schema.score_col("m", False) == "score/raw/m"
    assert schema.ens_col("uncertainty_weighted(lam=0.5)") == "ens/uncertainty_weighted(lam=0.5)"
    with pytest.raises(ValueError, match="spread"):
        schema.ens_col("std")
    cols = ["ens/std", "ens/mean", "ens/var", "score/z/a", "feature/x"]
    assert schema.aggregate_columns(cols) == ["ens/mean"]
    assert schema.strip(schema.Z, "score/z/a") == "a"
    with pytest.raises(ValueError):
        schema.strip(schema.Z, "feature/x")


#: Literal names that rewardherd wrote before docs/schema.md; no source file may write them
#: again (schema.py keeps them only to recognize old studies).
_OLD_NAMES = re.compile(r"""["'](rm/|z/|f/|member/|member_raw/|proxy/|ens_std|spread_std)"""
                        r"""|["'](finetune_seeds|pretrain_seeds)["'](?!\s*:)""")  # a dict key is a field, not a kind


def test_no_module_spells_a_column_or_kind_outside_the_schema():
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "schema.py":
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if _OLD_NAMES.search(line):
                offenders.append(f"{path.relative_to(SRC)}:{i}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_report_on_a_study_with_older_column_names_says_so(tmp_path):
    """A study written before the schema (pool columns f/<feature>) is refused with a clear
    message naming the file, not a KeyError deep in the analysis."""
    from rewardherd.cli import app

    out = tmp_path / "old_study"
    (out / "results").mkdir(parents=True)
    (out / "results" / "DONE").write_text("{}")
    pd.DataFrame({"unit": ["u"]}).to_parquet(out / "results" / "members.parquet")
    pd.DataFrame({"prompt_id": [0], "sample_id": [0], "gold": [0.5], "f/n_tokens": [3.0]}).to_parquet(
        out / "pool.parquet")
    res = CliRunner().invoke(app, ["report", str(out)])
    assert res.exit_code != 0 and isinstance(res.exception, SystemExit)  # a clean exit, not a KeyError
    assert "'f/n_tokens' is named as by an older rewardherd" in res.output and "pool.parquet" in res.output
