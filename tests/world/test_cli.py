from typer.testing import CliRunner

from rewardherd.world.cli import world_app


def test_build_command_prints_summary(corpus_file, tmp_path):
    args = ["build", "--profile", "smoke", "--cache-dir", str(tmp_path), "--corpus", str(corpus_file),
            "--no-progress", "--set", "backbones.seeds=[0]", "--set", "backbones.lm.steps=4",
            "--set", "policy.lm.steps=4"]
    res = CliRunner().invoke(world_app, args)
    assert res.exit_code == 0, res.output
    assert "world profile: smoke" in res.output and "preference pairs" in res.output
    warm = CliRunner().invoke(world_app, [*args, "--json"])
    assert warm.exit_code == 0 and '"build_seconds_total"' in warm.output


def test_missing_corpus_is_a_clear_error(tmp_path):
    res = CliRunner().invoke(world_app, ["build", "--profile", "smoke", "--cache-dir", str(tmp_path),
                                         "--corpus", str(tmp_path / "none.txt")])
    assert res.exit_code == 2
    assert "apt-get install" in res.output
