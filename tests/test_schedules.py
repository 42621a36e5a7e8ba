"""rlharness.schedules, checked step by step against Keras's own schedules as oracles."""

import inspect
import math
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from rlharness import _validate
from rlharness import schedules as sch

K = keras.optimizers.schedules
RTOL, ATOL = 1e-6, 1e-9


def case(ours, oracle, n, id):
    return pytest.param(ours, oracle, np.arange(n), id=id)


# (ours, Keras oracle, steps): each range crosses the decay ends, boundaries and warmup ends.
CASES = [
    case(sch.ExponentialDecay(0.1, 10, 0.5), K.ExponentialDecay(0.1, 10, 0.5), 35, "exp"),
    case(sch.ExponentialDecay(0.1, 10, 0.5, staircase=True),
         K.ExponentialDecay(0.1, 10, 0.5, staircase=True), 35, "exp-staircase"),
    case(sch.ExponentialDecay(2.3e-3, 7.5, 0.9), K.ExponentialDecay(2.3e-3, 7.5, 0.9), 25,
         "exp-float-decay-steps"),
    case(sch.ExponentialDecay(0.01, 4, 1.5), K.ExponentialDecay(0.01, 4, 1.5), 15, "exp-growth"),
    case(sch.StepDecay(0.1, drop=0.5, steps_per_drop=10),
         K.ExponentialDecay(0.1, 10, 0.5, staircase=True), 35, "step"),
    case(sch.StepDecay(0.3, drop=0.25, steps_per_drop=3),
         K.ExponentialDecay(0.3, 3, 0.25, staircase=True), 12, "step-3"),
    case(sch.StepDecay(0.3, drop=1.0, steps_per_drop=3),
         K.ExponentialDecay(0.3, 3, 1.0, staircase=True), 8, "step-no-drop"),
    case(sch.InverseTimeDecay(0.1, 10, 0.5), K.InverseTimeDecay(0.1, 10, 0.5), 35, "inv"),
    case(sch.InverseTimeDecay(0.1, 1, 0.01), K.InverseTimeDecay(0.1, 1, 0.01), 20, "inv-keras2"),
    case(sch.InverseTimeDecay(0.1, 10, 2.0, staircase=True),
         K.InverseTimeDecay(0.1, 10, 2.0, staircase=True), 35, "inv-staircase"),
    case(sch.PolynomialDecay(0.1, 10), K.PolynomialDecay(0.1, 10), 15, "poly"),
    case(sch.PolynomialDecay(0.1, 10, 0.01, power=2.0),
         K.PolynomialDecay(0.1, 10, 0.01, power=2.0), 15, "poly-2"),
    case(sch.PolynomialDecay(0.1, 10, 0.01, power=0.5, cycle=True),
         K.PolynomialDecay(0.1, 10, 0.01, power=0.5, cycle=True), 35, "poly-cycle"),
    case(sch.PolynomialDecay(0.01, 10, 0.1), K.PolynomialDecay(0.01, 10, 0.1), 15, "poly-up"),
    case(sch.LinearDecay(0.1, 10), K.PolynomialDecay(0.1, 10, 0.0), 15, "linear"),
    case(sch.LinearDecay(0.1, 10, 0.02), K.PolynomialDecay(0.1, 10, 0.02), 15, "linear-end"),
    case(sch.CosineDecay(0.1, 10), K.CosineDecay(0.1, 10), 15, "cos"),
    case(sch.CosineDecay(0.1, 10, alpha=0.1), K.CosineDecay(0.1, 10, alpha=0.1), 15, "cos-alpha"),
    case(sch.CosineDecay(0.1, 10, warmup_steps=5), K.CosineDecay(0.1, 10, warmup_steps=5), 20,
         "cos-warmup-ignored"),
    case(sch.CosineDecay(0.0, 10, warmup_steps=5, warmup_target=0.1),
         K.CosineDecay(0.0, 10, warmup_steps=5, warmup_target=0.1), 20, "cos-warmup"),
    case(sch.CosineDecay(0.01, 10, alpha=0.2, warmup_steps=4, warmup_target=0.1),
         K.CosineDecay(0.01, 10, alpha=0.2, warmup_steps=4, warmup_target=0.1), 20,
         "cos-warmup-alpha"),
    case(sch.CosineDecay(0.0, 10, warmup_target=0.1), K.CosineDecay(0.0, 10, warmup_target=0.1),
         15, "cos-target-no-warmup"),
    case(sch.PiecewiseConstant([10, 20], [0.1, 0.05, 0.01]),
         K.PiecewiseConstantDecay([10, 20], [0.1, 0.05, 0.01]), 25, "piecewise"),
    case(sch.PiecewiseConstant([0, 1, 5], [0.4, 0.3, 0.2, 0.1]),
         K.PiecewiseConstantDecay([0, 1, 5], [0.4, 0.3, 0.2, 0.1]), 8, "piecewise-3"),
]
OURS = [p.values[0] for p in CASES]
IDS = [p.id for p in CASES]
BY_ID = dict(zip(IDS, OURS, strict=True))


def keras_values(oracle, steps):
    # Keras's CosineDecay with a warmup_target is scalar-only (ops.cond), so one call per step.
    return np.array([float(oracle(int(s))) for s in steps], np.float32)


@pytest.mark.parametrize(("ours", "oracle", "steps"), CASES)
def test_matches_keras_at_every_step(ours, oracle, steps):
    expected = keras_values(oracle, steps)
    assert len(set(expected.tolist())) > 1 or isinstance(ours, sch.StepDecay)  # a real range
    scalar_int = np.array([float(ours(int(s))) for s in steps], np.float32)
    np.testing.assert_allclose(scalar_int, expected, rtol=RTOL, atol=ATOL)
    for s in steps:
        out = ours(tf.constant(s, tf.int64))
        assert out.dtype == tf.float32 and out.shape == ()
        np.testing.assert_allclose(out.numpy(), expected[s], rtol=RTOL, atol=ATOL)
    vector = ours(tf.range(len(steps), dtype=tf.int64))
    assert vector.dtype == tf.float32 and vector.shape == (len(steps),)
    np.testing.assert_allclose(vector.numpy(), expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(("ours", "oracle"), [
    (sch.ExponentialDecay(0.1, 100_000, 0.5), K.ExponentialDecay(0.1, 100_000, 0.5)),
    (sch.StepDecay(0.1, 0.5, 100_000), K.ExponentialDecay(0.1, 100_000, 0.5, staircase=True)),
    (sch.CosineDecay(0.0, 10**6, warmup_steps=10**5, warmup_target=0.1),
     K.CosineDecay(0.0, 10**6, warmup_steps=10**5, warmup_target=0.1)),
    (sch.PiecewiseConstant([10**6, 2 * 10**6], [0.1, 0.05, 0.01]),
     K.PiecewiseConstantDecay([10**6, 2 * 10**6], [0.1, 0.05, 0.01])),
], ids=["exp", "step", "cos-warmup", "piecewise"])
def test_matches_keras_at_large_int64_steps(ours, oracle):
    steps = np.concatenate([np.arange(99_998, 100_003), np.arange(10**6 - 2, 10**6 + 3),
                            np.arange(2 * 10**6 - 2, 2 * 10**6 + 3)])
    expected = [float(oracle(tf.constant(s, tf.int64))) for s in steps]
    got = ours(tf.constant(steps, tf.int64))
    np.testing.assert_allclose(got.numpy(), expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("step", [
    7, 7.0, np.int32(7), np.int64(7), np.float64(7.0), tf.constant(7), tf.constant(7, tf.int64),
    tf.constant(7.0, tf.float16), tf.constant(7.0, tf.float64), tf.constant(7, tf.uint8),
    tf.Variable(7, dtype=tf.int64), keras.Variable(7, dtype="int64"),
], ids=lambda s: type(s).__name__ + "-" + str(getattr(s, "dtype", "")))
@pytest.mark.parametrize("ours", [BY_ID[i] for i in ("exp", "piecewise", "cos-warmup")],
                         ids=["exp", "piecewise", "cos-warmup"])
def test_accepts_any_numeric_scalar_step(ours, step):
    out = ours(step)
    assert out.dtype == tf.float32 and out.shape == ()
    assert out.numpy() == ours(7).numpy()


@pytest.mark.parametrize("steps", [
    list(range(12)), np.arange(12), np.arange(12.0), tf.range(12), tf.range(12.0, dtype=tf.float64),
], ids=["list", "np-int", "np-float", "tf-int32", "tf-float64"])
def test_accepts_any_vector_of_steps(steps):
    for ours in OURS:
        out = ours(steps)
        assert out.dtype == tf.float32 and out.shape == (12,)
        np.testing.assert_array_equal(out.numpy(), ours(tf.range(12, dtype=tf.int64)).numpy())


def test_constant():
    lr = sch.Constant(3e-4)
    assert lr(5).shape == () and lr(tf.range(4)).shape == (4,)
    np.testing.assert_array_equal(lr(tf.range(4, dtype=tf.int64)).numpy(), np.float32(3e-4))


@pytest.mark.parametrize("ours", OURS + [sch.Constant(0.1)], ids=IDS + ["constant"])
def test_config_round_trip(ours):
    config = ours.get_config()
    params = set(inspect.signature(type(ours).__init__).parameters) - {"self"}
    assert set(config) == params
    steps = tf.range(40, dtype=tf.int64)
    for clone in (type(ours).from_config(config), K.deserialize(K.serialize(ours))):
        assert type(clone) is type(ours) and clone.get_config() == config
        np.testing.assert_array_equal(clone(steps).numpy(), ours(steps).numpy())


def test_optimizer_uses_schedule_at_its_iterations_and_saves_it():
    schedule = sch.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)
    opt = keras.optimizers.SGD(learning_rate=schedule)
    w = keras.Variable(np.zeros(1, np.float32))
    before = []
    for _ in range(5):
        np.testing.assert_allclose(float(opt.learning_rate), float(schedule(opt.iterations)))
        before.append(float(w.numpy()[0]))
        opt.apply([tf.ones(1)], [w])  # SGD on gradient 1: w moves by exactly -lr
    used = -np.diff(before + [float(w.numpy()[0])])
    np.testing.assert_allclose(used, 0.1 * 0.5 ** (np.arange(5) / 2), rtol=1e-6)
    assert int(opt.iterations) == 5
    shifted = schedule(opt.iterations + tf.constant(3, tf.int64))  # int64 + offset
    np.testing.assert_allclose(float(shifted), 0.1 * 0.5**4, rtol=1e-6)
    restored = keras.optimizers.SGD.from_config(opt.get_config())
    assert isinstance(restored._learning_rate, sch.ExponentialDecay)
    assert restored._learning_rate.get_config() == schedule.get_config()


def test_all_schedules_compile_with_xla_on_an_int64_variable():
    step = tf.Variable(0, dtype=tf.int64)

    @tf.function(jit_compile=True)
    def lrs():
        return tf.stack([s(step + 1) for s in OURS]), [s(step + tf.range(5, dtype=tf.int64))
                                                       for s in OURS]

    # XLA's cos/pow/division are not bit-identical to eager TF; 1 - cos(~pi) amplifies 1 ulp.
    close = {"rtol": 1e-5, "atol": 1e-8}
    for start in (0, 4, 9, 20):
        step.assign(start)
        scalars, vectors = lrs()
        for i, ours in enumerate(OURS):
            np.testing.assert_allclose(scalars[i].numpy(), ours(start + 1).numpy(), **close)
            np.testing.assert_allclose(vectors[i].numpy(), ours(np.arange(start, start + 5)),
                                       **close)


@pytest.mark.parametrize("cycle", [False, True])
def test_polynomial_sqrt_is_not_nan_at_the_end_under_xla(cycle):
    # Keras's own PolynomialDecay(0.1, 10, power=0.5) gives NaN at step 10 under XLA.
    lr = sch.PolynomialDecay(0.1, 10, 1e-4, power=0.5, cycle=cycle)
    step = tf.Variable(0, dtype=tf.int64)
    xla = tf.function(lambda: lr(step), jit_compile=True)
    for s in (3, 10, 20, 30):
        step.assign(s)
        np.testing.assert_allclose(float(xla()), float(lr(s)), rtol=RTOL)
        assert (float(lr(s)) == pytest.approx(1e-4)) is (s != 3)


def test_function_schedule_tensor_friendly():
    lr = sch.FunctionSchedule(lambda s: 0.1 * 0.5 ** (s / 100))
    assert lr.jit_compatible
    expected = (0.1 * 0.5 ** (np.arange(300) / 100)).astype(np.float32)
    np.testing.assert_allclose(lr(tf.range(300, dtype=tf.int64)).numpy(), expected, rtol=RTOL)
    np.testing.assert_allclose(float(lr(150)), expected[150], rtol=RTOL)
    step = tf.Variable(250, dtype=tf.int64)
    xla = tf.function(lambda: lr(step), jit_compile=True)
    np.testing.assert_allclose(float(xla()), expected[250], rtol=RTOL)
    assert lr.jit_compatible
    assert sch.FunctionSchedule(lambda s: 0.25)(tf.range(3)).numpy().tolist() == [0.25] * 3


@pytest.mark.parametrize("fn", [
    lambda s: 0.1 * math.pow(0.5, s / 100),
    lambda s: 0.1 if s < 100 else 0.1 * math.pow(0.5, s / 100),
], ids=["math.pow", "python-if"])
def test_function_schedule_python_fallback(fn):
    lr = sch.FunctionSchedule(fn)
    assert lr.jit_compatible is False
    steps = np.array([0, 1, 99, 100, 101, 250])
    expected = np.array([fn(int(s)) for s in steps], np.float32)
    np.testing.assert_allclose(lr(tf.constant(steps, tf.int64)).numpy(), expected, rtol=RTOL)
    assert [float(lr(int(s))) for s in steps] == pytest.approx(expected.tolist(), rel=RTOL)
    step = tf.Variable(250, dtype=tf.int64)
    graph = tf.function(lambda: lr(step + 1))
    assert graph().shape == () and float(graph()) == pytest.approx(fn(251), rel=RTOL)
    with pytest.raises(tf.errors.InvalidArgumentError, match="PyFunc"):
        tf.function(lambda: lr(step), jit_compile=True)()


def test_function_schedule_fallback_passes_python_ints():
    lr = sch.FunctionSchedule(lambda s: [0.3, 0.2, 0.1][s])  # a list index needs an int
    assert not lr.jit_compatible
    assert lr(tf.range(3, dtype=tf.int64)).numpy().tolist() == pytest.approx([0.3, 0.2, 0.1])


def test_function_schedule_config_keeps_the_callable():
    def fn(s):
        return 0.5 * s

    lr = sch.FunctionSchedule(fn)
    assert lr.get_config() == {"fn": fn}
    assert float(sch.FunctionSchedule.from_config(lr.get_config())(4)) == 2.0


def test_as_schedule():
    assert isinstance(sch.as_schedule(0.1), sch.Constant) and float(sch.as_schedule(0.1)(9)) == (
        pytest.approx(0.1))
    assert float(sch.as_schedule(1)(0)) == 1.0
    assert float(sch.as_schedule(np.float32(0.5))(0)) == 0.5
    ours, theirs = BY_ID["exp"], K.ExponentialDecay(0.1, 10, 0.5)
    assert sch.as_schedule(ours) is ours and sch.as_schedule(theirs) is theirs
    wrapped = sch.as_schedule(lambda s: 0.01 * (s + 1))
    assert isinstance(wrapped, sch.FunctionSchedule)
    np.testing.assert_allclose(wrapped(tf.range(3, dtype=tf.int64)).numpy(), [0.01, 0.02, 0.03])
    with pytest.raises(ValueError, match="^learning_rate must be a positive number, got -0.1$"):
        sch.as_schedule(-0.1)


@pytest.mark.parametrize("bad", ["0.1", None, True, [0.1], tf.Variable(0.1)],
                         ids=["str", "None", "bool", "list", "variable"])
def test_as_schedule_rejects_other_types(bad):
    with pytest.raises(TypeError, match="LearningRateSchedule") as info:
        sch.as_schedule(bad)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("name", "kwargs", "expected"), [
    ("constant", {}, [0.1] * 4),
    ("exponential", {}, 0.1 * 0.5 ** (np.arange(4) * 5 / 10)),
    ("exponential", {"staircase": True}, 0.1 * 0.5 ** np.floor(np.arange(4) * 5 / 10)),
    ("step", {}, 0.1 * 0.5 ** np.floor(np.arange(4) * 5 / 10)),
    ("inverse-time", {}, 0.1 / (1 + 0.5 * np.arange(4) * 5 / 10)),
    ("polynomial", {}, [0.1, 0.05 + 0.0005, 0.001, 0.001]),
    ("polynomial", {"end_learning_rate": 0.0, "power": 2.0}, [0.1, 0.025, 0.0, 0.0]),
    ("cosine", {}, [0.1, 0.05, 0.0, 0.0]),
    ("cosine", {"alpha": 0.5}, [0.1, 0.075, 0.05, 0.05]),
    ("cosine", {"warmup_steps": 10}, [0.0, 0.05, 0.1, 0.05]),
    ("piecewise", {}, [0.1, 0.1, 0.1, 0.05]),  # boundaries 10, 20, 30; step 10 is still 0.1
    ("piecewise", {"boundaries": [4, 12]}, [0.1, 0.05, 0.05, 0.025]),
    ("piecewise", {"boundaries": [4], "values": [0.3, 0.2]}, [0.3, 0.2, 0.2, 0.2]),
], ids=lambda x: x if isinstance(x, str) else None)
def test_make_schedule(name, kwargs, expected):
    lr = sch.make_schedule(name, 0.1, **{"decay_steps": 10, "decay_rate": 0.5, **kwargs})
    assert isinstance(lr, K.LearningRateSchedule)
    got = lr(tf.constant([0, 5, 10, 15], tf.int64)).numpy()
    np.testing.assert_allclose(got, np.asarray(expected, np.float32), rtol=1e-6, atol=1e-9)


def test_make_schedule_defaults_and_types():
    types = [sch.Constant, sch.ExponentialDecay, sch.StepDecay, sch.InverseTimeDecay,
             sch.PolynomialDecay, sch.CosineDecay, sch.PiecewiseConstant]
    for name, cls in zip(sch.SCHEDULE_NAMES, types, strict=True):
        assert type(sch.make_schedule(name, 0.1)) is cls
    assert sch.make_schedule("piecewise", 0.1).get_config() == {
        "boundaries": [10_000, 20_000, 30_000], "values": [0.1, 0.05, 0.025, 0.0125]}
    assert sch.make_schedule("exponential", 0.1).get_config()["decay_steps"] == 10_000
    with pytest.raises(ValueError, match="unknown schedule 'linear'; use one of constant, "
                                         "exponential, step, inverse-time, polynomial, cosine, "
                                         "piecewise$"):
        sch.make_schedule("linear", 0.1)


BAD_ARGS = [
    ("learning_rate", lambda: sch.Constant(0)),
    ("learning_rate", lambda: sch.Constant("0.1")),
    ("initial_learning_rate", lambda: sch.ExponentialDecay(-0.1, 10, 0.5)),
    ("initial_learning_rate", lambda: sch.ExponentialDecay(True, 10, 0.5)),
    ("decay_steps", lambda: sch.ExponentialDecay(0.1, 0, 0.5)),
    ("decay_steps", lambda: sch.ExponentialDecay(0.1, float("nan"), 0.5)),
    ("decay_rate", lambda: sch.ExponentialDecay(0.1, 10, 0)),
    ("decay_rate", lambda: sch.ExponentialDecay(0.1, 10, -0.5)),
    ("staircase", lambda: sch.ExponentialDecay(0.1, 10, 0.5, staircase="yes")),
    ("drop", lambda: sch.StepDecay(0.1, 1.5, 10)),
    ("drop", lambda: sch.StepDecay(0.1, 0, 10)),
    ("steps_per_drop", lambda: sch.StepDecay(0.1, 0.5, -10)),
    ("decay_steps", lambda: sch.InverseTimeDecay(0.1, -1, 0.5)),
    ("decay_rate", lambda: sch.InverseTimeDecay(0.1, 10, -0.5)),
    ("end_learning_rate", lambda: sch.PolynomialDecay(0.1, 10, -0.01)),
    ("power", lambda: sch.PolynomialDecay(0.1, 10, power=0)),
    ("cycle", lambda: sch.PolynomialDecay(0.1, 10, cycle=1)),
    ("decay_steps", lambda: sch.LinearDecay(0.1, 0)),
    ("initial_learning_rate", lambda: sch.CosineDecay(0.0, 10)),
    ("initial_learning_rate", lambda: sch.CosineDecay(-0.1, 10, warmup_target=0.1)),
    ("alpha", lambda: sch.CosineDecay(0.1, 10, alpha=1.5)),
    ("warmup_steps", lambda: sch.CosineDecay(0.0, 10, warmup_steps=-1, warmup_target=0.1)),
    ("warmup_target", lambda: sch.CosineDecay(0.0, 10, warmup_steps=5, warmup_target=0.0)),
    ("boundaries", lambda: sch.PiecewiseConstant([10, 10], [0.3, 0.2, 0.1])),
    ("boundaries", lambda: sch.PiecewiseConstant([20, 10], [0.3, 0.2, 0.1])),
    ("boundaries", lambda: sch.PiecewiseConstant([-1, 10], [0.3, 0.2, 0.1])),
    ("boundaries", lambda: sch.PiecewiseConstant(10, [0.3, 0.2])),
    ("values", lambda: sch.PiecewiseConstant([10, 20], [0.3, 0.2])),
    ("values", lambda: sch.PiecewiseConstant([10], [0.3, -0.2])),
    ("fn", lambda: sch.FunctionSchedule(0.1)),
    ("learning_rate", lambda: sch.make_schedule("cosine", -0.1)),
    ("decay_steps", lambda: sch.make_schedule("piecewise", 0.1, decay_steps=0)),
    ("warmup_steps", lambda: sch.make_schedule("cosine", 0.1, warmup_steps=-5)),
    ("decay_rate", lambda: sch.make_schedule("piecewise", 0.1, decay_rate=0)),
]


@pytest.mark.parametrize(("arg", "build"), BAD_ARGS,
                         ids=[f"{i}-{arg}" for i, (arg, _) in enumerate(BAD_ARGS)])
def test_bad_argument_is_named(arg, build):
    with pytest.raises(ValueError, match=rf"^{re.escape(arg)}\b") as info:
        build()
    assert "\n" not in str(info.value) and "got" in str(info.value)


def test_validate_messages():
    with pytest.raises(ValueError, match="^decay_steps must be a positive number, got 0$"):
        _validate.positive("decay_steps", 0)
    with pytest.raises(ValueError, match=r"^alpha must be a number in \[0, 1\], got 1.5$"):
        _validate.in_range("alpha", 1.5, 0, 1)
    with pytest.raises(ValueError, match=r"^drop must be a number in \(0, 1\], got 0$"):
        _validate.in_range("drop", 0, 0, 1, open_lo=True)
    with pytest.raises(ValueError, match="^n must be a positive integer, got 2.0$"):
        _validate.positive_int("n", 2.0)
    with pytest.raises(ValueError, match="^x must be a non-negative number, got 'a'$"):
        _validate.non_negative("x", "a")
    for bad in (True, float("inf"), float("nan"), None, -1):
        with pytest.raises(ValueError):
            _validate.positive("x", bad)
    with pytest.raises(ValueError):
        _validate.non_negative_int("n", -1)
    assert _validate.non_negative("x", 0) == 0 and _validate.in_range("x", 1, 0, 1) == 1
    assert _validate.positive_int("n", np.int64(3)) == 3 and _validate.non_negative_int("n", 0) == 0
    assert _validate.positive("x", np.float32(0.5)) == 0.5 and _validate.positive("x", 10**400)


def test_validate_imports_no_tensorflow_or_numpy():
    code = ("import sys, rlharness._validate; "
            "assert not {'tensorflow', 'keras', 'numpy'} & set(sys.modules), sys.modules.keys()")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
