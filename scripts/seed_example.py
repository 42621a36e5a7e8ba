"""The question's sine-regression loop, fixed with rlharness.

Twenty ``model.fit(..., epochs=1)`` calls, as in RL code. Keras's epoch-indexed
LearningRateScheduler would keep the lr constant here; GlobalStepScheduler decays it
exponentially by the global update step: ``lr = 0.5 * 0.5 ** (step / 25)``.

    python scripts/seed_example.py && tensorboard --logdir runs
"""

import random

from rlharness import cli  # imports no TF

parser = cli.ArgumentParser(prog="seed_example.py", description=__doc__.splitlines()[0])
parser.add_argument("--logdir", default=None,
                    help="TensorBoard directory (default: a fresh one under runs/)")
args = parser.parse_args()
args.logdir = args.logdir or cli.default_logdir("seed_example", "sine")
cli.refuse_used_logdir(args.logdir, "choose a new --logdir (its lr curve would restart at "
                       "step 0 over the old one)")

cli.import_tensorflow_quietly()
import keras  # noqa: E402
import numpy as np  # noqa: E402

from rlharness import GlobalStepScheduler  # noqa: E402
from rlharness.schedules import ExponentialDecay  # noqa: E402

X = [i * 0.05 for i in range(100)]
model = keras.Sequential(
    [keras.Input((1,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(1)]
)
model.compile(loss="mse", optimizer=keras.optimizers.Adam(learning_rate=0.5))
schedule = ExponentialDecay(initial_learning_rate=0.5, decay_steps=25, decay_rate=0.5)
scheduler = GlobalStepScheduler(schedule, log_dir=args.logdir)
for ep in range(20):
    # Once attached (at the first fit), the optimizer's lr reads schedule(global step).
    lr = float(model.optimizer.learning_rate if scheduler.controller else schedule(0))
    first = scheduler.global_step.updates
    X_train = np.array(random.sample(X, 10)).reshape(-1, 1)
    y_train = np.sin(X_train)
    history = model.fit(X_train, y_train, batch_size=2, epochs=1, verbose=0,
                        callbacks=[scheduler])
    print(f"iteration {ep:2d}  updates {first:2d}-{scheduler.global_step.updates - 1:2d}  "
          f"lr at its first batch {lr:.5f}  loss {history.history['loss'][-1]:.4f}")
print(f"lr of all {scheduler.global_step.updates} updates written to {args.logdir} "
      "(train/learning_rate)")
