"""Environment construction and validation on gymnasium, without TensorFlow."""

from __future__ import annotations

import copy
import difflib
import importlib
import importlib.util
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from gymnasium.wrappers import (
    ClipAction,
    FrameStackObservation,
    NormalizeObservation,
    RecordEpisodeStatistics,
    TransformObservation,
)
from gymnasium.wrappers.utils import RunningMeanStd
from gymnasium.wrappers.vector import NormalizeReward, TransformReward
from gymnasium.wrappers.vector import RecordEpisodeStatistics as VecRecordEpisodeStatistics

from envs.atari import is_atari_id
from envs.atari import register as register_atari


class EnvError(ValueError):
    """A bad environment choice; the message names the problem and the fix."""


def check_env_id(env_id: str) -> None:
    """Raise EnvError unless ``env_id`` is registered; ``module:Id`` imports ``module`` first;
    Atari ids register ale-py's games (EnvError naming the ``atari`` extra if missing)."""
    if is_atari_id(env_id):
        try:
            register_atari()
        except ImportError as e:
            raise EnvError(str(e)) from None
    if ":" in env_id:
        module, env_id = env_id.split(":", 1)
        try:
            importlib.import_module(module)
        except ImportError as e:
            msg = f"cannot import module {module!r} for environment {env_id!r}: {e}"
            raise EnvError(msg) from e
    if env_id in gym.registry:
        _check_extra(env_id)
        return
    close = difflib.get_close_matches(env_id, gym.registry.keys(), n=1, cutoff=0.6)
    if close:
        hint = f"did you mean {close[0]!r}?"
    else:
        hint = "known ids include " + ", ".join(list(gym.registry)[:6]) + ", ..."
    raise EnvError(f"unknown environment {env_id!r}; {hint} (see gymnasium.envs.registry)")


#: Entry-point package of gymnasium envs -> (modules it imports, the extra that has them).
EXTRAS = {"gymnasium.envs.box2d": (("Box2D", "pygame"), "box2d")}


def _check_extra(env_id: str) -> None:
    """EnvError naming the optional extra if ``env_id`` needs a package that is missing."""
    entry = gym.registry[env_id].entry_point
    if not isinstance(entry, str):
        return
    for package, (modules, extra) in EXTRAS.items():
        missing = [m for m in modules
                   if entry.startswith(package) and importlib.util.find_spec(m) is None]
        if missing:
            raise EnvError(f"environment {env_id!r} needs {' and '.join(missing)}, which is "
                           f"not installed; pip install -e '.[{extra}]'")


def _env_name(env: Any) -> str:
    spec = getattr(env, "spec", None)
    if spec is None:
        sub_envs = getattr(getattr(env, "unwrapped", env), "envs", None)
        spec = getattr(sub_envs[0], "spec", None) if sub_envs else None
    return spec.id if spec is not None else "this environment"


def require_discrete(env_or_space: Any, algo: str = "DQN") -> int:
    """Return the number of actions of a Discrete action space, else raise EnvError.

    Accepts a ``gym.Space``, a ``gym.Env`` or a ``gym.vector.VectorEnv``.
    """
    if isinstance(env_or_space, gym.Space):
        space, name = env_or_space, "this environment"
    else:
        space = getattr(env_or_space, "single_action_space", None)
        if space is None:
            space = env_or_space.action_space
        name = _env_name(env_or_space)
    if not isinstance(space, gym.spaces.Discrete) or int(space.start) != 0:
        raise EnvError(
            f"{algo} needs a Discrete action space (actions 0..n-1), but {name} has {space}; "
            "pick an environment with discrete actions such as CartPole-v1"
        )
    return int(space.n)


def require_discrete_or_box(env_or_space: Any, algo: str = "A2C") -> gym.Space:
    """Return the action space if it is Discrete (actions 0..n-1) or Box, else raise EnvError."""
    space = env_or_space if isinstance(env_or_space, gym.Space) else getattr(
        env_or_space, "single_action_space", None) or env_or_space.action_space
    if isinstance(space, gym.spaces.Box) or (
            isinstance(space, gym.spaces.Discrete) and int(space.start) == 0):
        return space
    name = "this environment" if isinstance(env_or_space, gym.Space) else _env_name(env_or_space)
    raise EnvError(
        f"{algo} needs a Discrete (actions 0..n-1) or Box action space, but {name} has "
        f"{space}; pick an environment such as CartPole-v1 or Pendulum-v1"
    )


def _route_mujoco_warnings(env_id: str) -> None:
    """MuJoCo prints its warnings to stderr and appends them to ``MUJOCO_LOG.TXT`` in the working
    directory; MuJoCo 4 warns at every model load that gymnasium 1.4's XML files use the
    deprecated ``settotalmass``. Route MuJoCo's warnings to Python's ``warnings`` (shown once),
    without that one. Only for MuJoCo envs: mujoco is imported only where a feature needs it."""
    spec = gym.registry.get(env_id)
    entry = spec.entry_point if spec is not None else None
    if not (isinstance(entry, str) and entry.startswith("gymnasium.envs.mujoco")):
        return
    try:
        import mujoco
    except ImportError:
        return  # gym.make says which extra to install

    def warn(message: str) -> None:
        if "settotalmass" not in message:
            warnings.warn(f"MuJoCo: {message.strip()}", RuntimeWarning, stacklevel=2)

    if mujoco.get_mju_user_warning() is None:
        mujoco.set_mju_user_warning(warn)


def _make(env_id: str, training: bool = True, **kwargs: Any) -> gym.Env:
    _route_mujoco_warnings(env_id)
    try:
        if is_atari_id(env_id):
            from envs.atari import make_atari

            return make_atari(env_id, training=training, **kwargs)
        if kwargs.get("sticky_actions") is not None:
            raise EnvError(f"sticky actions are for Atari games, not {env_id!r}")
        kwargs.pop("sticky_actions", None)
        return gym.make(env_id, **kwargs)
    except gym.error.DependencyNotInstalled as e:
        raise EnvError(f"environment {env_id!r} needs an extra package: {e}") from e


def make_env(env_id: str, seed: int | None = None, training: bool = True,
             **kwargs: Any) -> gym.Env:
    """``gym.make`` plus ``RecordEpisodeStatistics``, seeded when ``seed`` is given.
    Atari ids get the DQN preprocessing of :func:`envs.atari.make_atari` (``training``: with
    the training-only wrappers; ``sticky_actions``), episode statistics of whole games.

    The env comes back already reset with ``seed`` and its action space seeded, so a plain
    ``env.reset()`` continues a reproducible stream; ``env.reset(seed=seed)`` starts it over.
    """
    check_env_id(env_id)
    env = _make(env_id, training, **kwargs)
    if not is_atari_id(env_id):
        env = RecordEpisodeStatistics(env)
    if seed is not None:
        env.reset(seed=seed)
        env.action_space.seed(seed)
    return env


#: Normalized observations and rewards are clipped to +-CLIP (as Stable-Baselines3's VecNormalize).
CLIP = 10.0


def make_vec_env(
    env_id: str, n_envs: int = 1, seed: int | None = None, training: bool = True, *,
    normalize_obs: bool = False, normalize_reward: bool = False, gamma: float = 0.99,
    **kwargs: Any
) -> gym.vector.VectorEnv:
    """A ``SyncVectorEnv`` of ``n_envs`` copies in SAME_STEP autoreset mode, with episode stats.

    Box actions are clipped to the env's bounds in each sub-env (``ClipAction``), so an agent
    may act with unbounded samples. ``normalize_obs``: each sub-env standardizes its
    observations by running statistics (``NormalizeObservation``), then clips them to
    ``+-CLIP``; ``normalize_reward``: rewards are divided by the running std of the
    ``gamma``-discounted return (the vector ``NormalizeReward``, one set of statistics for all
    sub-envs), then clipped to ``+-CLIP``. Episode statistics (``rollout/ep_return``) stay raw.
    The statistics live in the wrappers, so checkpoints save them (:mod:`envs.state`);
    :func:`sync_normalization` copies them, frozen, into an evaluation env.

    Seeding works as in :func:`make_env`: sub-env ``i`` is reset with ``seed + i`` and its action
    space seeded with ``seed + i``. The caller starts with ``env.reset(seed=seed)`` (identical
    streams) or ``env.reset()`` (continues them); both are reproducible. Read transitions with
    :func:`final_observations` and :func:`finished_episodes`. Atari ids: see
    :func:`make_env`; each sub-env records its whole games' statistics itself.
    """
    check_env_id(env_id)
    if n_envs < 1:
        raise EnvError(f"n_envs must be at least 1, got {n_envs}")

    def sub_env() -> gym.Env:
        env = _make(env_id, training, **kwargs)
        if isinstance(env.action_space, gym.spaces.Box):
            env = ClipAction(env)
        if normalize_obs:
            env = NormalizeObservation(env)
            env = TransformObservation(env, lambda o: np.clip(o, -CLIP, CLIP),
                                       env.observation_space)
        return env

    vec = SyncVectorEnv([sub_env for _ in range(n_envs)],
                        autoreset_mode=AutoresetMode.SAME_STEP)
    env = vec if is_atari_id(env_id) else VecRecordEpisodeStatistics(vec)
    if normalize_reward:
        env = TransformReward(NormalizeReward(env, gamma=gamma),
                              lambda r: np.clip(r, -CLIP, CLIP))
    if seed is not None:
        env.reset(seed=seed)
        env.action_space.seed(seed)
        for i, sub in enumerate(vec.envs):
            sub.action_space.seed(seed + i)
    return env


def frame_stack_size(env: gym.vector.VectorEnv) -> int:
    """Frames stacked by a ``FrameStackObservation`` in the sub-envs (1 if none)."""
    layer = env.unwrapped.envs[0] if hasattr(env.unwrapped, "envs") else env
    while isinstance(layer, gym.Wrapper):
        if isinstance(layer, FrameStackObservation):
            return int(layer.stack_size)
        layer = layer.env
    return 1


def _layers_of(env: Any, kind: type) -> list:
    """Every wrapper of type ``kind`` in a vector env and its sub-envs, outside-in."""
    found, layers = [], [env]
    while layers:
        layer = layers.pop(0)
        if isinstance(layer, kind):
            found.append(layer)
        layers += [x for x in (vars(layer).get("env"),) if x is not None]
        layers += list(vars(layer).get("envs", ()))
    return found


def sync_normalization(env: Any, eval_env: Any) -> None:
    """Give ``eval_env``'s observation normalizers the statistics of all of ``env``'s sub-envs
    (merged: the mean and variance of every observation they have seen), frozen, so that an
    evaluation neither changes the training statistics nor its own. No-op without them."""
    train = _layers_of(env, NormalizeObservation)
    evaluate = _layers_of(eval_env, NormalizeObservation)
    if not train or not evaluate:
        return
    merged = RunningMeanStd(epsilon=0.0, shape=train[0].obs_rms.mean.shape,
                            dtype=train[0].obs_rms.mean.dtype)
    for layer in train:
        rms = layer.obs_rms
        merged.update_from_moments(rms.mean, rms.var, rms.count)
    for layer in evaluate:
        layer.obs_rms = copy.deepcopy(merged)
        layer.update_running_mean = False


def observation_normalizer(env: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """``(mean, scale)`` of the (first) observation normalizer in ``env``, None without one:
    the wrapper computes ``clip(float32((obs - mean) / scale), -CLIP, CLIP)`` with
    ``scale = sqrt(var + epsilon)``, which is computed here as it does (same dtypes), so a
    policy exported with these constants sees the observations the agent saw."""
    layers = _layers_of(env, NormalizeObservation)
    if not layers:
        return None
    rms, epsilon = layers[0].obs_rms, layers[0].epsilon
    return np.array(rms.mean), np.sqrt(rms.var + epsilon)


def final_observations(next_obs: np.ndarray, infos: dict, done: np.ndarray) -> np.ndarray:
    """True next observation of each sub-env for the step just taken.

    ``infos["final_obs"]`` where ``done``, else ``next_obs``; ``next_obs`` itself when none ended.
    """
    if not done.any():
        return next_obs
    final = infos.get("final_obs")
    if final is None:
        raise EnvError("infos has no 'final_obs'; build the env with make_vec_env (SAME_STEP)")
    idx = np.flatnonzero(done)
    real = next_obs.copy()
    real[idx] = np.stack(final[idx])
    return real


def finished_episodes(infos: dict) -> list[tuple[float, int]]:
    """(return, length) of each episode that ended on this step, in sub-env order: from the
    vector env's statistics, or else each sub-env's own (Atari: whole games, real scores),
    which SAME_STEP autoreset moves to ``infos["final_info"]``."""
    if "_episode" not in infos:
        infos = infos.get("final_info", {})
    mask = infos.get("_episode")
    if mask is None:
        return []
    stats = infos["episode"]
    return [(float(r), int(n)) for r, n in zip(stats["r"][mask], stats["l"][mask], strict=True)]
