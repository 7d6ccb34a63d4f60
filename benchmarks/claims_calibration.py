"""Calibration of every claim rule: false-positive rate and power at the study's size.

For each claim function in :mod:`rewardherd.studies.claims`, simulate studies where the
effect is absent (null), present (effect) and reversed (opposite) with
:mod:`rewardherd.studies.calibration`, run the real claim function on each, and print
the share of verdicts with Monte Carlo standard errors.

Targets: under each null, "reproduced" <= 5%; under the opposite effect, "reproduced"
<= 5%; under the effect, "not reproduced" <= 5%; power (reproduced under the effect)
reported (aim >= 80%).

    python benchmarks/claims_calibration.py                 # 200 replicates per cell (quick size)
    python benchmarks/claims_calibration.py --quick         # 50 replicates
    python benchmarks/claims_calibration.py --seeds 6 --pool 128 --prompts 256 --json out.json
"""

from __future__ import annotations

import argparse
import json
import time

from rewardherd.studies import calibration as cal


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=200)
    ap.add_argument("--quick", action="store_true", help="50 replicates per cell")
    ap.add_argument("--seeds", type=int, default=cal.Size.seeds)
    ap.add_argument("--prompts", type=int, default=cal.Size.prompts)
    ap.add_argument("--pool", type=int, default=cal.Size.pool)
    ap.add_argument("--members", type=int, default=cal.Size.members)
    ap.add_argument("--claim", action="append", help="only these claim functions")
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args()
    reps = 50 if args.quick else args.replicates
    size = cal.Size(seeds=args.seeds, prompts=args.prompts, pool=args.pool, members=args.members)
    print(f"size: {size.seeds} seeds x {size.prompts} prompts, pool {size.pool}, K={size.members}; "
          f"{reps} replicates per cell")
    print(f"{'claim':26s} {'truth':8s} {'scenario':52s} {'reproduced':>14s} {'not repr.':>14s} "
          f"{'inconcl.':>8s} {'mean est':>9s} {'target':>7s} {'s':>5s}")
    rows = []
    for i, sc in enumerate(cal.scenarios() + cal.peak_scenarios()):  # the sweep's rule last: seeds unchanged
        if args.claim and sc.claim not in args.claim:
            continue
        t = time.time()
        r = cal.run_scenario(sc, size, reps, seed=1000 + i)
        r["seconds"] = round(time.time() - t, 1)
        r["target_met"] = cal.target_met(r)
        rows.append(r)
        print(f"{sc.claim[:17] + '/' + sc.kind[:8]:26s} {sc.truth:8s} {sc.name[:52]:52s} "
              f"{r['reproduced']:6.3f}±{r['reproduced se']:.3f} {r['not reproduced']:6.3f}±{r['not reproduced se']:.3f} "
              f"{r['inconclusive']:8.3f} {r['mean_estimate']:+9.4f} {('ok' if r['target_met'] else 'MISSED'):>7s} "
              f"{r['seconds']:5.0f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"size": size.__dict__, "replicates": reps, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
