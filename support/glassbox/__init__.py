"""Glassbox Labs: the support package behind the course notebooks.

One module per concern: ``data`` (datasets), ``explain`` (interpretability helpers), ``vault`` (the dev
Vault), ``artifacts`` and ``serving`` (the model and its server), ``deploy`` (containers), ``checks``
(learner self-checks), ``course`` (lab generation and progress), ``masking`` (secrets kept out of notebook
outputs), ``cli`` (the ``glassbox`` command).

Imported in a notebook kernel (every lab imports it in its first cells), it installs two kernel hooks: secret
masking (:mod:`glassbox.masking`) and feedback for exceptions in exercise cells (:mod:`glassbox.checks.kernel`).
"""

import sys

__version__ = "0.1.0"


def _install_kernel_hooks() -> None:
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or getattr(shell, "kernel", None) is None:
        return
    from glassbox import masking
    from glassbox.checks import kernel

    masking.install(shell)
    kernel.install(shell)


_install_kernel_hooks()
