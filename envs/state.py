"""Exact, pickle-free save and restore of a vector env's state, for mid-episode resume.

:func:`get_env_state` walks every layer of the vector env (its wrappers, the ``SyncVectorEnv``)
and of each sub-env (``TimeLimit`` ... ``.unwrapped``) and keeps the attributes that are plain
data: numbers, strings, ``None``, numpy arrays and scalars, flat tuples/lists/deques of numbers,
``np.random.Generator`` states, and every space's RNG. Keys read ``"vec/0/episode_returns"`` or
``"sub2/0/_elapsed_steps"`` (sub-env 2, outermost wrapper); ``"<layer>/__class__"`` holds the
layer's class and env id. numpy data is stored as is, everything else as JSON in a 0-d unicode
array, so ``np.savez`` + ``np.load(allow_pickle=False)`` round-trips it.

Not saved: references (envs, spaces, specs), callables, enums, ``metadata``, ``render_mode``,
per-step output buffers (``_env_obs``, ``_observations``, ``_previous_data``) and nested
containers such as FrozenLake's transition table ``P`` (constant configuration). Saved but not
restored: ``episode_start_time(s)``, ``time.perf_counter()`` readings of the saving process.

Also saved: the running statistics of gymnasium's normalization wrappers (``RunningMeanStd``:
mean, var, count, exactly), and the simulator state of MuJoCo envs: MuJoCo's whole integration
state (``mj_getState`` with ``mjSTATE_INTEGRATION``: time, qpos, qvel, act, warm start, controls,
...) under ``"<layer>/mujoco.state"``; the env's RNG is its ``_np_random``, as for every env.

Exact resume covers pure-Python envs: classic control, toy text, ``Chain-v0``, ``Catch-v0``;
MuJoCo envs; and Atari: an ALE interface is saved through its own serialisation
(``cloneState(include_rng=True)``, base64 in JSON) and restored with ``restoreState``; lists and
deques of arrays (the frame stack, the max-pool buffer) as JSON lists. Envs holding other opaque
objects (Box2D worlds, pygame surfaces, nested containers) fail :func:`supports_exact_state`; the
trainer then warns and resumes with freshly reset episodes.
"""

from __future__ import annotations

import base64
import json
from collections import deque
from collections.abc import Iterator
from enum import Enum
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import EnvSpec
from gymnasium.vector import VectorEnv, VectorWrapper
from gymnasium.wrappers.utils import RunningMeanStd

_SKIP = {"metadata", "_metadata", "spec", "_cached_spec", "render_mode", "_saved_kwargs",
         "_action_space", "_observation_space", "_single_action_space",
         "_single_observation_space", "_previous_data", "_env_obs", "_observations"}
_NOT_RESTORED = {"episode_start_time", "episode_start_times", "__class__"}
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")
_REFERENCES = (gym.Env, VectorEnv, gym.Space, EnvSpec, Enum, type)
_MUJOCO = "mujoco.state"  # the pseudo-attribute holding a MuJoCo env's simulator state
_MUJOCO_OBJECTS = {"model", "data", "mujoco_renderer"}  # replaced by it


def _is_mujoco(layer: Any) -> bool:
    """A gymnasium MuJoCo env (``MujocoEnv``): it holds ``model`` and an ``MjData``."""
    return type(vars(layer).get("data")).__name__ == "MjData" and "model" in vars(layer)


def _mujoco_state(layer: Any) -> np.ndarray:
    """MuJoCo's integration state of ``layer`` (float64; imports mujoco only for MuJoCo envs)."""
    import mujoco

    spec = mujoco.mjtState.mjSTATE_INTEGRATION
    state = np.empty(mujoco.mj_stateSize(layer.model, spec), np.float64)
    mujoco.mj_getState(layer.model, layer.data, state, spec)
    return state


def _set_mujoco_state(layer: Any, state: np.ndarray) -> None:
    """Restore :func:`_mujoco_state`, then recompute the derived quantities (``mj_forward``)."""
    import mujoco

    mujoco.mj_setState(layer.model, layer.data, np.asarray(state, np.float64),
                       mujoco.mjtState.mjSTATE_INTEGRATION)
    mujoco.mj_forward(layer.model, layer.data)


class EnvStateError(ValueError):
    """A saved env state that does not fit the env it is restored into."""


def _layers(env: VectorEnv) -> Iterator[tuple[str, Any]]:
    """(key prefix, object) for each vector layer outside-in, then each sub-env's layers."""
    def chain(layer: Any, kind: type) -> list[Any]:
        return [layer, *chain(vars(layer).get("env"), kind)] if isinstance(layer, kind) else []
    vec = chain(env, VectorEnv)
    if not vec:
        raise TypeError(f"expected a vector env (see make_vec_env), got {type(env).__name__}")
    yield from ((f"vec/{depth}", layer) for depth, layer in enumerate(vec))
    for i, sub in enumerate(vars(vec[-1]).get("envs", ())):
        yield from ((f"sub{i}/{depth}", layer) for depth, layer in enumerate(chain(sub, gym.Env)))


def _attributes(layer: Any) -> dict[str, Any]:
    """``vars(layer)``, plus the RNG slots an env only fills on its first reset; a MuJoCo
    env's simulator objects are replaced by their state."""
    if isinstance(layer, (gym.Wrapper, VectorWrapper)):
        return dict(vars(layer))
    slots = {name: getattr(layer, name, None) for name in ("_np_random", "_np_random_seed")}
    attributes = {**slots, **vars(layer)}
    if _is_mujoco(layer):
        attributes = {k: v for k, v in attributes.items() if k not in _MUJOCO_OBJECTS}
        attributes[_MUJOCO] = _mujoco_state(layer)
    return attributes


def _spaces(name: str, space: gym.Space) -> Iterator[tuple[str, gym.Space]]:
    yield name, space
    subs = space.spaces if isinstance(space, (gym.spaces.Tuple, gym.spaces.Dict)) else ()
    for key, sub in subs.items() if isinstance(subs, dict) else enumerate(subs):
        yield from _spaces(f"{name}.{key}", sub)


def _entries(env: VectorEnv) -> Iterator[tuple[str, Any, str, Any]]:
    """(key, holder, attribute name, value) of every candidate attribute, in walk order."""
    for prefix, layer in _layers(env):
        spec = vars(layer).get("spec")
        ident = type(layer).__name__ + (f" {spec.id}" if isinstance(spec, EnvSpec) else "")
        yield f"{prefix}/__class__", None, "__class__", ident
        for name, value in _attributes(layer).items():
            if isinstance(value, gym.Space):
                for path, space in _spaces(name, value):
                    yield f"{prefix}/{path}.np_random", space, "_np_random", space._np_random
            elif name not in _SKIP and not callable(value):
                yield f"{prefix}/{name}", layer, name, value


def _json(value: Any) -> np.ndarray:
    plain = lambda o: o.tolist() if isinstance(o, np.ndarray) else o.item()  # noqa: E731
    return np.array(json.dumps(value, default=plain))


def _is_json(arr: np.ndarray) -> bool:
    return arr.ndim == 0 and arr.dtype.kind == "U"


def _encode(value: Any) -> np.ndarray | None:
    """``value`` as a numpy array, or None when it is not plain data."""
    if isinstance(value, (np.ndarray, np.generic)) and not isinstance(value, np.str_):
        kind = np.asarray(value).dtype.kind
        return np.array(value) if kind in "biufcS" or (kind == "U" and np.ndim(value)) else None
    if value is None or (isinstance(value, (int, float, str)) and not isinstance(value, Enum)):
        return _json(str(value) if isinstance(value, str) else value)
    if isinstance(value, np.random.Generator):
        return _json({"generator": value.bit_generator.state})
    if hasattr(value, "cloneState") and hasattr(value, "restoreState"):  # ALE, with its RNG
        state = value.cloneState(include_rng=True).serialize()
        return _json({"ale_state": base64.b64encode(state).decode()})
    if isinstance(value, (list, deque)) and value and all(
            isinstance(x, np.ndarray) and x.dtype.kind in "biuf" for x in value):
        arrays = {"arrays": [x.tolist() for x in value], "dtype": str(value[0].dtype)}
        return _json({**arrays, "maxlen": value.maxlen} if isinstance(value, deque) else arrays)
    if isinstance(value, RunningMeanStd):
        return _json({"running_mean_std": {"mean": value.mean, "var": value.var,
                                           "count": value.count,
                                           "dtype": np.asarray(value.mean).dtype.str}})
    if isinstance(value, (tuple, list, deque)) and all(
            isinstance(x, (int, float, np.number, np.bool_)) for x in value):
        return _json({"deque": list(value), "maxlen": value.maxlen} if isinstance(value, deque)
                     else {"tuple": value} if isinstance(value, tuple) else value)
    return None


def _decode(arr: np.ndarray, current: Any) -> Any:
    """The value ``arr`` encodes; numpy data is copied into ``current`` when it fits."""
    if not _is_json(arr):
        if isinstance(current, np.ndarray) and current.flags.writeable \
                and (current.shape, current.dtype) == (arr.shape, arr.dtype):
            np.copyto(current, arr)
            return current
        return arr[()] if arr.ndim == 0 and not isinstance(current, np.ndarray) else arr.copy()
    value = json.loads(arr.item())
    if not isinstance(value, dict):
        return value
    if "ale_state" in value:
        import ale_py

        state = ale_py.ALEState(base64.b64decode(value["ale_state"]))
        if current is not None:
            current.restoreState(state)
        return current
    if "arrays" in value:
        arrays = [np.array(x, value["dtype"]) for x in value["arrays"]]
        return deque(arrays, value["maxlen"]) if "maxlen" in value else arrays
    if "deque" in value or "tuple" in value:
        return deque(value["deque"], value["maxlen"]) if "deque" in value else tuple(value["tuple"])
    if "running_mean_std" in value:
        saved = value["running_mean_std"]
        rms = RunningMeanStd(shape=np.shape(saved["mean"]), dtype=np.dtype(saved["dtype"]))
        rms.mean = np.asarray(saved["mean"], saved["dtype"])
        rms.var = np.asarray(saved["var"], saved["dtype"])
        rms.count = saved["count"]
        return rms
    name = value["generator"].get("bit_generator")
    if name not in _BIT_GENERATORS:
        raise ValueError(f"unknown bit generator {name!r}")
    same = isinstance(current, np.random.Generator) and type(current.bit_generator).__name__ == name
    gen = current if same else np.random.Generator(getattr(np.random, name)())
    gen.bit_generator.state = value["generator"]
    return gen


def get_env_state(env: VectorEnv) -> dict[str, np.ndarray]:
    """Everything needed to continue ``env`` exactly, as numpy arrays (see the module doc)."""
    encoded = ((key, _encode(value)) for key, _, _, value in _entries(env))
    return {key: arr for key, arr in encoded if arr is not None}


def _mismatch(key: str, theirs: np.ndarray | None, ours: np.ndarray | None, layer: Any) -> str:
    """Why ``key`` does not fit (empty if it does); ``layer`` is None if the env lacks it."""
    name = key.rsplit("/", 1)[1]
    if theirs is None:
        return "is missing from the state"
    if ours is None:  # fine only for a plain attribute that a fresh env creates on reset
        clash = layer is None or "." in name or hasattr(type(layer), name) or name in vars(layer)
        return "is in the state but not in this env" if clash else ""
    if name == "__class__" and theirs.tolist() != ours.tolist():
        return f"is {theirs.tolist()} in the state but {ours.tolist()} here"
    if not (_is_json(theirs) or _is_json(ours)) and theirs.shape != ours.shape:
        return f"has shape {theirs.shape} in the state but {ours.shape} here"
    return ""


def set_env_state(env: VectorEnv, state: dict[str, np.ndarray]) -> None:
    """Restore :func:`get_env_state` output onto a fresh env of the same id and ``n_envs``.

    Raises EnvStateError, naming the first mismatching key, when ``state`` does not fit ``env``.
    """
    state, own, layers = dict(state), get_env_state(env), dict(_layers(env))
    for key in [*own, *(k for k in state if k not in own)]:
        problem = _mismatch(key, state.get(key), own.get(key), layers.get(key.rsplit("/", 1)[0]))
        if problem:
            raise EnvStateError(f"env state does not fit this env (another env id or n_envs?): "
                                f"{key!r} {problem}")
    try:  # decode everything once, so that a malformed value fails before the env is touched
        for key in state:
            _decode(state[key], None)
    except (AttributeError, KeyError, TypeError, ValueError) as e:
        raise EnvStateError(f"env state value {key!r} is malformed: {e}") from e
    for key, holder, name, current in _entries(env):
        if name == _MUJOCO:
            _set_mujoco_state(holder, state[key])
        elif key in own and name not in _NOT_RESTORED:
            setattr(holder, name, _decode(state[key], current))
    for key in state.keys() - own.keys():  # attributes a fresh env creates on its first reset
        prefix, name = key.rsplit("/", 1)
        if name not in _NOT_RESTORED:
            setattr(layers[prefix], name, _decode(state[key], None))


def _opaque(value: Any) -> bool:
    """True for a value that may hold state that :func:`get_env_state` cannot store."""
    if isinstance(value, (list, deque)) and value and _encode(value) is not None:
        return False
    if isinstance(value, dict):
        return any(_opaque(v) for v in value.values())
    if isinstance(value, (tuple, list, deque)):
        return any(isinstance(v, np.ndarray) or _opaque(v) for v in value)
    return not (callable(value) or isinstance(value, _REFERENCES) or _encode(value) is not None)


def supports_exact_state(env: VectorEnv) -> bool:
    """Whether every layer of ``env`` and of its sub-envs holds only data that can be saved."""
    return not any(_opaque(value) for _, layer in _layers(env)
                   for name, value in _attributes(layer).items() if name not in _SKIP)
