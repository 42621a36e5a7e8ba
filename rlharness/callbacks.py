"""A drop-in Keras callback for plain ``model.fit`` loops."""

from __future__ import annotations

import keras

from rlharness.controller import DecayController, ScheduleLike
from rlharness.logger import RunWriter
from rlharness.step import GlobalStep


class GlobalStepScheduler(keras.callbacks.Callback):
    """Decay the lr by a global update step that survives across ``fit`` calls.

    ``keras.callbacks.LearningRateScheduler`` is indexed by epoch, so a loop of
    ``model.fit(..., epochs=1)`` calls never decays. Pass the *same* instance to every
    ``fit``: each gradient step uses ``schedule(updates so far)``, batch 0 of the next
    ``fit`` continuing where the last one stopped. The lr is computed in-graph, so it is
    exact at every batch even with ``steps_per_execution > 1``. With ``log_dir`` every
    update's lr goes to TensorBoard as ``train/learning_rate`` on the global update step.
    """

    def __init__(
        self,
        schedule: ScheduleLike,
        log_dir: str | None = None,
        global_step: GlobalStep | None = None,
    ) -> None:
        super().__init__()
        self.schedule = schedule
        self.global_step = global_step if global_step is not None else GlobalStep()
        self.writer = RunWriter(log_dir) if log_dir else None
        self.controller: DecayController | None = None

    def on_train_begin(self, logs=None) -> None:
        optimizer = self.model.optimizer
        if self.controller is None or self.controller.optimizer is not optimizer:
            self.controller = DecayController(optimizer, self.schedule, self.global_step)
            # A train function traced before the controller existed reads the old lr.
            self.model.make_train_function(force=True)
        self._first_update = self.global_step.updates
        self.controller.before_update()

    def on_train_end(self, logs=None) -> None:
        n = self.controller.after_update()
        if self.writer is not None and n:
            lrs = self.controller.learning_rates(self._first_update, n)
            steps = range(self._first_update, self._first_update + n)
            self.writer.scalars("train/learning_rate", lrs, steps)
            self.writer.flush()
