"""`rewardherd world ...`: build the built-in world and print its summary.

The main CLI registers :data:`world_app` as ``rewardherd world``. Help texts come from
the config dataclasses' field docstrings.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from rewardherd.cli_common import ProgressOpt, or_fail
from rewardherd.config import field_docs
from rewardherd.world.config import PROFILES, CorpusConfig, WorldConfig

C = field_docs(CorpusConfig)
W = field_docs(WorldConfig)

world_app = typer.Typer(
    name="world",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@world_app.callback()
def _world() -> None:
    """The built-in offline world: corpus, tokenizer, tiny LMs, gold reward, preference data."""


def _print_summary(summary: dict) -> None:
    s = summary
    typer.echo(f"world profile: {s['profile']}")
    typer.echo(f"  corpus: {s['corpus']['items']} items {s['corpus']['splits']}")
    typer.echo(f"  tokenizer: {s['tokenizer']['vocab_size']} tokens")
    for b in s["backbones"]:
        typer.echo(f"  backbone seed {b['seed']}: {b['n_params']:,} params, held-out ppl "
                   f"{b['val_perplexity']:.1f}, {b['build_seconds']:.0f}s")
    p = s["policy"]
    typer.echo(f"  policy: {p['n_params']:,} params, held-out ppl {p['val_perplexity']:.1f}, "
               f"{p['build_seconds']:.0f}s")
    typer.echo(f"  prompts: {s['prompts']}")
    pr = s["preferences"]
    typer.echo(f"  preference pairs (<= {pr['max_new_tokens']} new tokens): train "
               f"{pr['train']['pairs']}, held-out {pr['heldout']['pairs']}; chosen is longer in "
               f"{pr['train'].get('chosen_longer_frac', float('nan')):.2f} of pairs of unequal length; "
               f"{pr['train'].get('over_max_words_frac', float('nan')):.3f} of their responses beyond the gold limit")
    g = s["base_samples"]
    typer.echo(f"  base samples (<= {s['pool_max_new_tokens']} new tokens, {g['samples']}): gold "
               f"mean {g['gold_mean']:.3f} sd {g['gold_std']:.3f} [q10 {g['gold_q10']:.3f}, "
               f"q90 {g['gold_q90']:.3f}]; words mean {g['words_mean']:.1f}, q95 "
               f"{g['words_q95']:.0f}, over the gold limit {g['over_max_words_frac']:.2f}; zero: "
               + ", ".join(f"{k[:-len('_zero_frac')]} {v:.2f}" for k, v in g.items() if k.endswith("_zero_frac")))
    typer.echo(f"  build time of the artifacts: {s['build_seconds_total']:.1f}s; "
               f"this call: {s['wall_seconds_this_call']:.1f}s")


@world_app.command("build")
def build(
    profile: Annotated[str, typer.Option(help=f"World profile: {', '.join(PROFILES)}.")] = "quick",
    cache_dir: Annotated[Path | None, typer.Option(
        help="Cache root (default $REWARDHERD_CACHE or ~/.cache/rewardherd).")] = None,
    corpus: Annotated[Path | None, typer.Option(help=C["path"])] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Dotted config override, e.g. policy.lm.steps=600 (repeatable).")] = None,
    threads: Annotated[int | None, typer.Option(help=W["num_threads"])] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    progress: ProgressOpt = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each step.")] = False,
) -> None:
    """Build the world (or load it from the cache) and print its summary."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from rewardherd.world.config import world_config
    from rewardherd.world.corpus import CorpusNotFoundError
    from rewardherd.world.world import build_world

    overrides = list(set_ or [])
    if corpus is not None:
        overrides.append(f"corpus.path={json.dumps(str(corpus))}")
    if threads is not None:
        overrides.append(f"num_threads={threads}")
    cfg: WorldConfig = or_fail(world_config, profile, overrides)
    world = or_fail(build_world, cfg, cache_dir, progress=progress, errors=CorpusNotFoundError)
    if as_json:
        typer.echo(json.dumps(world.summary, indent=1))
    else:
        _print_summary(world.summary)
