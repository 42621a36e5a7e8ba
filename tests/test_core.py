"""Global step, decay controller, Keras callback and TensorBoard writer: real TF, real events.

The lr *actually used* at each gradient step is recovered from the weights: a bias-free
linear model with loss ``mean(prediction)`` trained by plain SGD on one-hot inputs moves
weight ``i`` by exactly ``-lr`` at the step that sees ``e_i``.
"""

import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT

from rlharness import DecayController, GlobalStep, GlobalStepScheduler, RunWriter, read_scalars
from rlharness.schedules import ExponentialDecay, StepDecay

N = 40  # gradient steps per test
SCHEDULE = ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)


def expected(schedule, steps):
    return np.array([float(schedule(int(s))) for s in steps], np.float32)


def probe_model(dim=N, steps_per_execution=1, optimizer=None):
    model = keras.Sequential(
        [keras.Input((dim,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")]
    )
    model.compile(
        optimizer=optimizer or keras.optimizers.SGD(1.0),
        loss=lambda y_true, y_pred: keras.ops.mean(y_pred),
        steps_per_execution=steps_per_execution,
    )
    return model


def used_lrs(model):
    return -model.layers[-1].kernel.numpy()[:, 0]


def one_hot(rows, dim=N):
    return np.eye(dim, dtype=np.float32)[list(rows)], np.zeros((len(rows), 1), np.float32)


def test_global_step_survives_checkpoint(tmp_path):
    step = GlobalStep(updates=5, env_steps=1234, episodes=7)
    path = tf.train.Checkpoint(step=step).write(str(tmp_path / "ckpt"))
    restored = GlobalStep()
    tf.train.Checkpoint(step=restored).read(path).assert_consumed()
    assert restored.as_dict() == {"updates": 5, "env_steps": 1234, "episodes": 7}
    assert restored["env_steps"] == 1234
    with pytest.raises(ValueError, match="clock"):
        restored["epochs"]


def test_callback_over_twenty_fit_calls_decays_at_every_batch(tmp_path):
    """The seed's loop: 20 x fit(epochs=1); batch 0 of each fit continues the step."""
    model = probe_model()
    scheduler = GlobalStepScheduler(SCHEDULE, log_dir=str(tmp_path))
    seen = []
    probe = keras.callbacks.LambdaCallback(
        on_train_batch_begin=lambda b, logs: seen.append(float(model.optimizer.learning_rate))
    )
    for i in range(20):
        x, y = one_hot(range(2 * i, 2 * i + 2))
        model.fit(x, y, batch_size=1, epochs=1, shuffle=False, verbose=0,
                  callbacks=[scheduler, probe])
    want = expected(SCHEDULE, range(N))
    np.testing.assert_allclose(used_lrs(model), want, rtol=1e-6)
    np.testing.assert_allclose(seen, want, rtol=1e-6)
    assert scheduler.global_step.updates == N
    points = read_scalars(str(tmp_path))["train/learning_rate"]
    assert [s for s, _ in points] == list(range(N))
    np.testing.assert_allclose([v for _, v in points], want, rtol=1e-6)


def test_keras_learning_rate_scheduler_does_not_decay_in_such_a_loop():
    """The problem this project exists for, pinned so the test above means something."""
    model = probe_model()
    keras_cb = keras.callbacks.LearningRateScheduler(lambda epoch: float(SCHEDULE(epoch)))
    for i in range(20):
        x, y = one_hot(range(2 * i, 2 * i + 2))
        model.fit(x, y, batch_size=1, epochs=1, shuffle=False, verbose=0, callbacks=[keras_cb])
    np.testing.assert_allclose(used_lrs(model), np.full(N, 0.1), rtol=1e-6)


@pytest.mark.parametrize("steps_per_execution", [1, 8])
def test_controller_under_one_fit_over_many_minibatches(steps_per_execution):
    model = probe_model(steps_per_execution=steps_per_execution)
    step = GlobalStep(updates=100)  # a resumed run: the schedule continues at 100
    controller = DecayController(model.optimizer, SCHEDULE, step)
    controller.before_update()
    model.fit(*one_hot(range(N)), batch_size=1, epochs=1, shuffle=False, verbose=0)
    assert controller.after_update() == N
    assert step.updates == 100 + N
    np.testing.assert_allclose(used_lrs(model), expected(SCHEDULE, range(100, 100 + N)), rtol=1e-6)
    np.testing.assert_allclose(
        controller.learning_rates(100, N), expected(SCHEDULE, range(100, 100 + N)), rtol=1e-6
    )


def test_controller_under_train_on_batch():
    model = probe_model()
    step = GlobalStep()
    controller = DecayController(model.optimizer, SCHEDULE, step)
    for i in range(N):
        controller.before_update()
        model.train_on_batch(*one_hot([i]))
        controller.after_update()
    assert step.updates == N
    np.testing.assert_allclose(used_lrs(model), expected(SCHEDULE, range(N)), rtol=1e-6)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_controller_under_compiled_round_of_minibatches(jit_compile):
    model = probe_model()
    optimizer = keras.optimizers.SGD(1.0)
    optimizer.build(model.trainable_variables)
    step = GlobalStep()
    controller = DecayController(optimizer, SCHEDULE, step)

    @tf.function(jit_compile=jit_compile)
    def round_(xs):
        for i in tf.range(tf.shape(xs)[0]):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(model(xs[i : i + 1]))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply(grads, model.trainable_variables)

    xs = tf.eye(N)
    for chunk in range(4):  # four rounds of 10 steps, one graph call each
        controller.before_update()
        round_(xs[chunk * 10 : chunk * 10 + 10])
        assert controller.after_update() == 10
    np.testing.assert_allclose(used_lrs(model), expected(SCHEDULE, range(N)), rtol=1e-6)


def test_env_steps_clock_holds_lr_within_a_round():
    model = probe_model()
    step = GlobalStep()
    schedule = StepDecay(0.1, drop=0.5, steps_per_drop=1000)
    controller = DecayController(model.optimizer, schedule, step, clock="env_steps")
    for r in range(4):
        step.env_steps = 1000 * r
        controller.before_update()
        model.fit(*one_hot(range(10 * r, 10 * r + 10)), batch_size=1, shuffle=False, verbose=0)
        controller.after_update()
    np.testing.assert_allclose(used_lrs(model), np.repeat(0.1 * 0.5 ** np.arange(4), 10), rtol=1e-6)
    assert step.updates == N


def test_optimizer_built_with_its_own_keras_schedule():
    own = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    model = probe_model(optimizer=keras.optimizers.SGD(own))
    with pytest.raises(ValueError, match="own ExponentialDecay"):
        DecayController(model.optimizer, SCHEDULE, GlobalStep())
    # schedule=None: the optimizer's schedule is driven by the global step (here resumed at 20).
    controller = DecayController(model.optimizer, None, GlobalStep(updates=20))
    controller.before_update()
    model.fit(*one_hot(range(N)), batch_size=1, shuffle=False, verbose=0)
    np.testing.assert_allclose(used_lrs(model), expected(own, range(20, 20 + N)), rtol=1e-6)


def test_plain_callable_schedule():
    model = probe_model()
    controller = DecayController(model.optimizer, lambda s: 0.01 * (s + 1), GlobalStep())
    controller.before_update()
    model.fit(*one_hot(range(N)), batch_size=1, shuffle=False, verbose=0)
    np.testing.assert_allclose(used_lrs(model), 0.01 * (np.arange(N) + 1), rtol=1e-6)


def test_bad_clock_is_rejected():
    with pytest.raises(ValueError, match="clock"):
        DecayController(keras.optimizers.SGD(0.1), SCHEDULE, GlobalStep(), clock="epochs")


def test_run_writer_round_trip_and_monotone_steps(tmp_path):
    writer = RunWriter(str(tmp_path))
    writer.scalars("train/learning_rate", [0.1, 0.09, 0.08], [0, 1, 2])
    writer.scalar("train/loss", 1.5, 2)
    writer.flush()
    writer.scalar("train/loss", 1.25, 5)
    with pytest.raises(ValueError, match="not after"):
        writer.scalar("train/loss", 1.0, 5)
    with pytest.raises(ValueError, match="strictly increase"):
        writer.scalars("train/learning_rate", [0.1, 0.2], [9, 9])
    writer.close()
    points = read_scalars(str(tmp_path))
    assert points["train/learning_rate"] == [(0, pytest.approx(0.1)), (1, pytest.approx(0.09)),
                                             (2, pytest.approx(0.08))]
    assert points["train/loss"] == [(2, 1.5), (5, 1.25)]


def test_seed_example_script_decays_per_update_and_refuses_a_used_logdir(tmp_path):
    script = [sys.executable, os.path.join(ROOT, "scripts", "seed_example.py")]
    log_dir = str(tmp_path / "seed")
    out = subprocess.run([*script, "--logdir", log_dir], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    lrs = [float(x) for x in re.findall(r"lr at its first batch ([0-9.]+)", out)]
    # 10 samples in batches of 2: 5 updates per fit, so iteration i starts at update 5 i
    np.testing.assert_allclose(lrs, [0.5 * 0.5 ** (5 * i / 25) for i in range(20)], atol=1e-5)
    lr = read_scalars(log_dir)["train/learning_rate"]
    assert [s for s, _ in lr] == list(range(100))
    np.testing.assert_allclose([v for _, v in lr], 0.5 * 0.5 ** (np.arange(100) / 25), rtol=1e-6)

    before = sorted(os.listdir(log_dir))
    again = subprocess.run([*script, "--logdir", log_dir], capture_output=True, text=True,
                           cwd=ROOT)
    assert again.returncode == 2 and "is not empty" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1 and sorted(os.listdir(log_dir)) == before
