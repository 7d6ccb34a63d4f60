"""The report figures' choices (studies/plots.py): which curves a figure shows, its styles,
which figures a results folder gets and in what order; nothing is drawn where there is no data."""

import json

import pandas as pd
import pytest

from rewardherd.studies import kinds as ks
from rewardherd.studies import plots


def _curves(sizes=(3,), features=False):
    rows = []
    for kind, method, size in [("single", "mean", 1)] + [(k, m, s) for k in ("finetune", "pretrain")
                                                           for m in ("mean", "min") for s in sizes]:
        for n, kl in ((1, 0.0), (2, 0.19), (4, 0.64)):
            rows.append({"noise": 0.0, "kind": kind, "method": method, "size": size, "n": n, "kl": kl,
                         "gold": 0.1 * n, "gold_delta": 0.1 * (n - 1), "gold_delta_low": 0.0,
                         "gold_delta_high": 0.2 * n, "proxy": float(n),
                         **({"feature/n_words": 2.0 * n} if features else {})})
    return pd.DataFrame(rows)


def test_style_colours_by_kind_and_dashes_by_method_name():
    assert plots._style("pretrain", "min") == {"color": ks.color("pretrain"), "ls": "--"}
    assert plots._style("finetune", "uncertainty_weighted(lam=0.5)")["ls"] == ":"  # parameters do not matter
    assert plots._style("single", "something_new")["ls"] == (0, (5, 1, 1, 1))  # an unknown method's fallback
    with pytest.raises(ValueError, match="unknown ensemble kind 'no_such_kind'"):
        plots._style("no_such_kind", "mean")


def test_main_curves_are_the_single_rm_and_the_full_size_ensembles():
    curves = _curves(sizes=(1, 2, 3))
    assert plots._ensemble_size(curves) == 3  # the largest ensemble, single rows aside
    main = plots._main_curves(curves)
    assert set(zip(main["kind"], main["size"], strict=True)) == {("single", 1), ("finetune", 3), ("pretrain", 3)}
    assert len(main) == 3 * (1 + 2 * 2)  # n values x (single + 2 kinds x 2 methods)


@pytest.mark.parametrize(("figure", "arg"), [
    (plots.rl, pd.DataFrame()), (plots.accuracy, pd.DataFrame()), (plots.cross, pd.DataFrame()),
    (plots.kinds, pd.DataFrame()), (plots.sizes, _curves(sizes=(3,))), (plots.features, _curves(features=False)),
])
def test_nothing_is_drawn_without_data(figure, arg, tmp_path):
    assert figure(arg, tmp_path / "x.png") is None
    assert not (tmp_path / "x.png").exists()


def _results(out, kinds_rows=None):
    res = out / "results"
    res.mkdir(parents=True)
    _curves(features=True).to_parquet(res / "curves.parquet")
    pd.DataFrame({"noise": [0.0] * 2, "which": ["best", "worst"], "n": [4, 4], "gold": [0.5, 0.1],
                  "kl": [0.64, 0.64]}).to_parquet(res / "member_band.parquet")
    pd.DataFrame(columns=["noise", "seed", "member", "heldout_accuracy", "optimized_accuracy"]).to_parquet(
        res / "optimized_accuracy.parquet")
    pd.DataFrame(columns=["noise", "seed", "optimized", "gold"]).to_parquet(res / "cross.parquet")
    if kinds_rows is not None:
        (res / "kinds.json").write_text(json.dumps(kinds_rows))
    return out


def test_all_figures_makes_only_the_figures_with_data(tmp_path):
    figs = plots.all_figures(_results(tmp_path))
    # no accuracy, cross, sizes (one size), kinds, rl or sharing results: those are left out
    assert list(figs) == ["bon_gold", "bon_proxy", "features"]
    assert all(p.exists() and p.parent == tmp_path / "figures" for p in figs.values())
    assert set(figs) <= set(plots.CAPTIONS)


def test_a_study_of_kinds_puts_its_cost_figure_first(tmp_path):
    row = {"noise": 0.0, "method": "mean", "forward_passes": 1, "train_seconds": 1.0, "gain_vs_single": 0.1,
           "gain_vs_single_low": 0.0, "gain_vs_single_high": 0.2}
    figs = plots.all_figures(_results(tmp_path, [{**row, "kind": "pretrain", "forward_passes": 3},
                                                 {**row, "kind": "multi_head"}]))
    assert list(figs)[0] == "kinds" and figs["kinds"].exists()
