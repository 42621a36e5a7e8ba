#!/bin/bash
# The DQN preset seed runs of docs/results.md, one at a time, niced; each run's summary line
# goes to results/logs/ENV-seedS.log. Usage: bash results/run_dqn_presets.sh [OUTDIR]
# Flags spelled out in full (they equal hyperparams/dqn.toml's tables).
out=${1:-runs/results}
mkdir -p results/logs
acrobot="--env Acrobot-v1 --total-steps 100000 --lr exponential(6.3e-4,rate=0.1,steps=100000) --batch-size 128 --buffer-size 50000 --learning-starts 0 --gamma 0.99 --target-update-interval 250 --train-freq 16 --gradient-steps 16 --exploration-fraction 0.12 --exploration-final-eps 0.1"
mountaincar="--env MountainCar-v0 --total-steps 120000 --lr exponential(4e-3,rate=0.1,steps=60000) --batch-size 128 --buffer-size 10000 --learning-starts 1000 --gamma 0.98 --target-update-interval 600 --train-freq 16 --gradient-steps 8 --exploration-fraction 0.2 --exploration-final-eps 0.07"
lunar="--env LunarLander-v3 --total-steps 200000 --lr exponential(6.3e-4,rate=0.1,steps=200000) --batch-size 128 --buffer-size 50000 --learning-starts 0 --gamma 0.99 --target-update-interval 250 --train-freq 16 --gradient-steps 16 --exploration-fraction 0.12 --exploration-final-eps 0.1"
# Interleaved so that every env gets seeds early: (config seed) in this order.
order=${ORDER:-"acrobot 0 acrobot 1 acrobot 2 mountaincar 0 mountaincar 1 lunar 0 mountaincar 2
  acrobot 3 lunar 1 acrobot 4 mountaincar 3 mountaincar 4 lunar 2 lunar 3 lunar 4"}
set -- $order
while [ $# -gt 1 ]; do
  cfg=$1 seed=$2; shift 2
  name=$cfg-seed$seed
  [ -e "$out/$name/config.json" ] && continue
  start=$(date -u +%T)
  nice -n 10 python scripts/train_dqn.py ${!cfg} --seed $seed --logdir "$out/$name" \
    > "results/logs/$name.log" 2>&1
  echo "$name rc=$? started $start ended $(date -u +%T): $(grep -h 'eval mean return' results/logs/$name.log)" >> results/logs/queue.log
done
