"""``raitner reproduce``: the paper's studies as configs, run end to end with a report.

* :mod:`~raitner.reproduce.config`: the study config (YAML) and its checks;
* :mod:`~raitner.reproduce.plan`: the config as de-duplicated build / train / eval stages;
* :mod:`~raitner.reproduce.runner`: running the stages, resumably, with completion markers;
* :mod:`~raitner.reproduce.verdicts`: the rule that says whether a finding was reproduced;
* :mod:`~raitner.reproduce.tables`: ``results.json``, markdown tables, the index;
* :mod:`~raitner.reproduce.plots`: PNG figures (optional matplotlib).

Importing this package imports none of torch, transformers or matplotlib.
"""

from __future__ import annotations

from raitner.reproduce.config import ReproduceConfigError, StudyConfig, parse_config, read_config

__all__ = ["ReproduceConfigError", "StudyConfig", "parse_config", "read_config", "reproduce"]


def reproduce(*args, **kwargs):
    """See :func:`raitner.reproduce.runner.reproduce`."""
    from raitner.reproduce.runner import reproduce as run

    return run(*args, **kwargs)
