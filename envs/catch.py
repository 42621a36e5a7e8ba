"""bsuite's Catch (Osband et al. 2020) as a tiny pixel task for the CNN path."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

#: Pixels per grid cell and black border: 10 rows x 4 px and 5 columns x 8 px make a 40 x 40
#: picture, framed by 2 px to 44 x 44. The Nature CNN's convolutions (8x8/4, 4x4/2, 3x3/1)
#: see every pixel of a side of 36 + 8 k px only (36, 44, ..., 84), and drop the last rows
#: and columns of any other size: at 40 x 40 they would never see the paddle. 44 is the
#: smallest such size holding the grid at an integer scale.
CELL_HEIGHT, CELL_WIDTH, BORDER = 4, 8, 2


class CatchEnv(gym.Env):
    """A ball falls one row per step from a uniformly random column of the top row of a
    ``rows x columns`` grid; the paddle on the bottom row (starting in the middle column)
    moves left (0), stays (1) or moves right (2). When the ball reaches the bottom row the
    episode terminates with reward +1 if the paddle is under it, else -1 (0 on every other
    step), so every episode lasts ``rows - 1`` steps.

    Observation: the grid as a grayscale uint8 image of shape ``(rows * 4 + 4, columns * 8 +
    4)`` (each cell 4 x 8 px, a 2 px border), ball and paddle 255, background 0 (44 x 44 for
    the default 10 x 5 grid), Markov on its own and stackable with
    ``gymnasium.wrappers.FrameStackObservation``.
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"]}

    def __init__(self, rows: int = 10, columns: int = 5,
                 render_mode: str | None = None) -> None:
        if rows < 2 or columns < 1:
            raise ValueError(f"Catch needs rows >= 2 and columns >= 1, got {rows} x {columns}")
        self.rows, self.columns = int(rows), int(columns)
        self.render_mode = render_mode
        shape = (self.rows * CELL_HEIGHT + 2 * BORDER, self.columns * CELL_WIDTH + 2 * BORDER)
        self.observation_space = gym.spaces.Box(0, 255, shape, np.uint8)
        self.action_space = gym.spaces.Discrete(3)
        self.ball_row, self.ball_column, self.paddle = 0, 0, self.columns // 2

    def grid(self) -> np.ndarray:
        """The ``rows x columns`` board: 1 at the ball and the paddle."""
        board = np.zeros((self.rows, self.columns), np.uint8)
        board[self.ball_row, self.ball_column] = 1
        board[self.rows - 1, self.paddle] = 1
        return board

    def _obs(self) -> np.ndarray:
        pixels = np.kron(self.grid(), np.ones((CELL_HEIGHT, CELL_WIDTH), np.uint8))
        return np.pad(pixels * np.uint8(255), BORDER)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.ball_row = 0
        self.ball_column = int(self.np_random.integers(0, self.columns))
        self.paddle = self.columns // 2
        return self._obs(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self.action_space.contains(action):
            raise ValueError(f"Catch actions are 0 (left), 1 (stay), 2 (right), got {action!r}")
        self.paddle = min(max(self.paddle + int(action) - 1, 0), self.columns - 1)
        self.ball_row += 1
        terminated = self.ball_row == self.rows - 1
        reward = (1.0 if self.ball_column == self.paddle else -1.0) if terminated else 0.0
        return self._obs(), reward, terminated, False, {}

    def render(self) -> np.ndarray | None:
        if self.render_mode == "rgb_array":
            return np.repeat(self._obs()[:, :, None], 3, axis=2)
        return None


if "Catch-v0" not in gym.registry:
    gym.register(id="Catch-v0", entry_point="envs.catch:CatchEnv")
