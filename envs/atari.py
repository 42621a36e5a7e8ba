"""Atari 2600 games through ale-py (the optional ``atari`` extra), with the standard DQN
preprocessing (Mnih et al. 2015; Machado et al. 2018) from gymnasium's own wrappers.

Imported only when an Atari id is asked for: ``import envs`` never imports ale-py.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import (
    AtariPreprocessing,
    FrameStackObservation,
    RecordEpisodeStatistics,
    TransformReward,
)

FRAME_STACK = 4
MISSING = ("Atari environments need the optional 'atari' extra (ale-py, which ships the "
           "ROMs, and OpenCV for the resizing): pip install 'rlharness[atari]'")


def is_atari_id(env_id: str) -> bool:
    """``ALE/<Game>-v5`` and ``<Game>NoFrameskip-v4`` (the ids the DQN preprocessing fits)."""
    return env_id.startswith("ALE/") or env_id.endswith("NoFrameskip-v4")


def register() -> None:
    """Register ale-py's ids with gymnasium; ImportError naming the extra if it is missing."""
    try:
        import ale_py
        import cv2  # noqa: F401  (AtariPreprocessing's resize)
    except ImportError as e:
        raise ImportError(MISSING) from e
    gym.register_envs(ale_py)


class FireReset(gym.Wrapper):
    """Presses FIRE after each reset in games that wait for it (Breakout...), as in
    Stable-Baselines3's ``FireResetEnv``; gymnasium has no such wrapper."""

    def reset(self, **kwargs) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        for action in (1, 2):  # FIRE, then UP (some games need a second action)
            obs, _, terminated, truncated, info = self.env.step(action)
            if terminated or truncated:
                obs, info = self.env.reset(**kwargs)
        return obs, info


class EpisodicLife(gym.Wrapper):
    """Training only: a life loss ends the episode for the agent (``terminated``), but the
    game goes on: the next ``reset`` continues it with a no-op step unless it is really
    over (Mnih et al. 2015; Stable-Baselines3's ``EpisodicLifeEnv``). gymnasium's
    ``AtariPreprocessing(terminal_on_life_loss=True)`` would reset the whole game instead."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.lives, self.game_over = 0, True

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.game_over = terminated or truncated
        lives = self.env.unwrapped.ale.lives()
        if 0 < lives < self.lives:
            terminated = True
        self.lives = lives
        return obs, reward, terminated, truncated, info

    def reset(self, **kwargs) -> tuple[np.ndarray, dict[str, Any]]:
        if self.game_over:
            obs, info = self.env.reset(**kwargs)
        else:
            obs, _, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:
                obs, info = self.env.reset(**kwargs)
        self.lives = self.env.unwrapped.ale.lives()
        return obs, info


def make_atari(env_id: str, *, training: bool = True, sticky_actions: float | None = None,
               **kwargs: Any) -> gym.Env:
    """One Atari game with the DQN preprocessing, outermost last:

    ``gym.make(frameskip=1)`` (ALE's sticky actions: ``sticky_actions`` if given, else the
    id's default, 0.25 for v5 and 0 for NoFrameskip-v4) -> ``AtariPreprocessing`` (up to
    30 no-op starts, frame skip 4 max-pooling the last two frames, 84x84 grayscale uint8) ->
    ``RecordEpisodeStatistics`` (real game scores of whole games, before the training-only
    wrappers) -> training only: ``EpisodicLife`` -> ``FireReset`` (games with a FIRE
    action; after each lost life too when training) -> training only: rewards clipped to
    their sign -> ``FrameStackObservation(4)``: ``(4, 84, 84)`` uint8 observations.
    """
    register()
    if sticky_actions is not None:
        kwargs["repeat_action_probability"] = sticky_actions
    env = gym.make(env_id, frameskip=1, **kwargs)
    env = AtariPreprocessing(env, noop_max=30, frame_skip=4, screen_size=84)
    env = RecordEpisodeStatistics(env)
    if training:
        env = EpisodicLife(env)
    if "FIRE" in env.unwrapped.get_action_meanings():
        env = FireReset(env)
    if training:
        env = TransformReward(env, np.sign)
    return FrameStackObservation(env, FRAME_STACK)
