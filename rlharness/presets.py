"""Tuned hyperparameter presets, kept as data: ``hyperparams/<algo>.toml``, one table per env id.

A table's keys are the training script's long flags without the dashes, its values what the
flag would be given (numbers; text for schedules; lists for multi-value flags; ``true``/``false``
for on/off flags)::

    ["Acrobot-v1"]
    total-steps = 100000
    lr = "linear(6.3e-4, end=6.3e-5, steps=25000)"

``cli.parse`` applies the table of ``--env`` as if its flags came first on the command line, so
every flag given overrides it, and the preset's values go through the flag's own validation.
TF-free, like ``cli``.
"""

from __future__ import annotations

import argparse
import os

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

PRESET_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "hyperparams")


class PresetError(ValueError):
    """A preset file that cannot be read or names a flag the script does not have."""


def path(algo: str) -> str:
    return os.path.join(PRESET_DIR, f"{algo}.toml")


def load(algo: str) -> dict[str, dict]:
    """Every preset of ``algo``: ``{env_id: {flag: value}}`` ({} when the file is absent)."""
    try:
        with open(path(algo), "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise PresetError(f"{path(algo)} is unreadable ({e})") from None


def as_argv(parser: argparse.ArgumentParser, table: dict, where: str) -> list[str]:
    """The command-line flags that ``table`` stands for, to be placed before the user's own."""
    actions = parser._option_string_actions  # argparse has no public lookup by option string
    argv: list[str] = []
    for key, value in table.items():
        option = f"--{key}"
        action = actions.get(option)
        if action is None:
            raise PresetError(f"{where}: {key!r} is not a flag of {parser.prog}")
        if isinstance(action, argparse.BooleanOptionalAction):
            argv.append(option if value else f"--no-{key}")
        elif action.nargs == 0:  # store_true
            if value:
                argv.append(option)
        elif isinstance(value, list):
            argv += [option, *map(str, value)]
        else:
            argv += [option, str(value)]
    return argv


def describe(parser: argparse.ArgumentParser, algo: str) -> str:
    """The text of ``--list-presets``: one line per env, its flags as they would be typed."""
    presets = load(algo)
    if not presets:
        return f"no presets for {algo} ({path(algo)})"
    lines = [f"presets of {parser.prog} ({os.path.relpath(path(algo))}); a flag given "
             "on the command line overrides the preset's:"]
    for env, table in presets.items():
        lines.append(f"  --env {env}: " + " ".join(
            f"'{a}'" if " " in a or "(" in a else a for a in as_argv(parser, table, env)))
    return "\n".join(lines)
