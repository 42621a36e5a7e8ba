#!/bin/bash
# The DQN preset seed runs of docs/results.md, one at a time, niced: the presets of
# hyperparams/dqn.toml, picked by --env. Each run's summary line goes to OUTDIR/logs/queue.log.
# Usage: bash scripts/run_dqn_presets.sh [OUTDIR]; then python scripts/ablation_table.py "ENV=OUTDIR/ENV-seed*"
out=${1:-runs/results}
mkdir -p "$out/logs"
# Interleaved so that every env gets seeds early: (env seed) in this order.
order=${ORDER:-"Acrobot-v1 0 Acrobot-v1 1 Acrobot-v1 2 MountainCar-v0 0 MountainCar-v0 1
  LunarLander-v3 0 MountainCar-v0 2 Acrobot-v1 3 LunarLander-v3 1 Acrobot-v1 4
  MountainCar-v0 3 MountainCar-v0 4 LunarLander-v3 2 LunarLander-v3 3 LunarLander-v3 4"}
set -- $order
while [ $# -gt 1 ]; do
  env=$1 seed=$2; shift 2
  name=$env-seed$seed
  [ -e "$out/$name/config.json" ] && continue
  start=$(date -u +%T)
  nice -n 10 python scripts/train_dqn.py --env "$env" --seed "$seed" --logdir "$out/$name" \
    --no-progress > "$out/logs/$name.log" 2>&1
  echo "$name rc=$? started $start ended $(date -u +%T): $(grep -h 'eval mean return' "$out/logs/$name.log")" >> "$out/logs/queue.log"
done
