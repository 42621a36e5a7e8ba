"""Multi-seed runs, hyperparameter sweeps and Population Based Training on Ray Tune.

``scripts/sweep.py`` is the entry point. The pieces, by what they may import:

- :mod:`rlharness.sweep.spec`: the sweep's flags, checked with the training script's own
  parser (no TensorFlow, no Ray), and the trial names;
- :mod:`rlharness.sweep.report`: ``results.csv`` and ``summary.md`` (numpy only);
- :mod:`rlharness.sweep.trial`: what runs inside a Ray worker: one ordinary training run
  (TensorFlow, imported after the thread limits are set);
- :mod:`rlharness.sweep.driver`: Ray Tune set-up, schedulers, status table, Ctrl-C, resume.

Nothing here is imported by the core or the training scripts.
"""
