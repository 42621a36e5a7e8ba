"""Many trainings on Ray Tune: seeds, grids, sampled searches, ASHA and Population Based
Training. Every trial is an ordinary run directory under the sweep's --logdir.

    python scripts/sweep.py dqn --seeds 5 --grid lr=1e-3,2.3e-3
    python scripts/sweep.py dqn --sample lr=loguniform:1e-4:1e-2 --num-samples 8 \\
        --search optuna --scheduler asha -- --total-steps 30000
    python scripts/sweep.py --resume --logdir runs/sweep-...     # continue a killed sweep

See docs/sweep.md. Needs the `sweep` extra: pip install -e ".[sweep]".
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rlharness.sweep.driver import main  # noqa: E402  (no TensorFlow, no Ray yet)

if __name__ == "__main__":
    sys.exit(main())
