"""Glassbox Labs: the support package behind the course notebooks.

One module per concern: ``data`` (datasets), ``explain`` (interpretability helpers), ``vault`` (the dev
Vault), ``artifacts`` and ``serving`` (the model and its server), ``deploy`` (containers), ``checks``
(learner self-checks), ``course`` (lab generation and progress), ``cli`` (the ``glassbox`` command).
"""

__version__ = "0.1.0"
