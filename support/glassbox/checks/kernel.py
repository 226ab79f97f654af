"""In the notebook kernel: an exception raised by a learner's code in an exercise cell becomes feedback.

An *exercise cell* is a cell that calls a self-check (a function made by :func:`glassbox.checks.exercise`).
When the learner's code in it raises before the check runs, the learner sees the check's "not yet" box with
what the library said, what that means here (the table below), and the exercise's hint tiers, instead of a
bare traceback; the full traceback is folded in the box, and ``%tb`` prints it. The cell then counts as run,
so *Run All* goes on to the end, as it does after any other "not yet". Errors in other cells are shown as usual,
except when the course's Vault or model server has stopped: then any cell says so in one line, with what to
do, and still fails (so *Run All* stops there).

| exception | what it means here |
|---|---|
| ``hvac.exceptions.InvalidPath`` | Vault has nothing at that path (404): check the mount point and the path |
| ``hvac.exceptions.InvalidRequest`` | Vault refused the request's parameters (400): its message names the one |
| ``hvac.exceptions.Forbidden`` | the token's policies do not allow this operation on this path (403) |
| ``hvac.exceptions.Unauthorized`` | the token is missing, expired or revoked (401) |
| ``hvac.exceptions.VaultDown`` | the Vault server is sealed or stopped |
| ``requests.exceptions.ConnectionError`` | nothing answers at the Vault address: `glassbox vault up` starts it |
| ``httpx.HTTPStatusError`` | the server answered with an error status: its body says why |
| ``httpx.ConnectError`` | nothing answers at that address: is the server running, on that port? |
| ``skops.io.exceptions.UntrustedTypesFoundException`` | the file holds types you did not list as trusted |
| ``sklearn.exceptions.NotFittedError`` | the model is used before ``fit`` |
| ``KeyError`` | a key or column that is not there: print the keys you have |
| ``NameError`` | a name that is not defined yet: run the cells above first, or check the spelling |
| ``TypeError`` | a function got an argument of the wrong kind or a wrong keyword |
| ``ValueError`` | an argument of the right kind with a value the function refuses |
| ``SyntaxError`` | the code is not valid Python: look at the line and column shown |
"""

from __future__ import annotations

import re
import sys

from glassbox.checks import infrastructure_failure, raised

__all__ = ["install", "meaning"]

_MEANINGS = {
    "hvac.exceptions.InvalidPath": "Vault has nothing at that path (404): check the mount point and the path.",
    "hvac.exceptions.InvalidRequest": "Vault refused the request's parameters (400): its message names the one.",
    "hvac.exceptions.Forbidden": "the token's policies do not allow this operation on this path (403).",
    "hvac.exceptions.Unauthorized": "the token is missing, expired or revoked (401).",
    "hvac.exceptions.VaultDown": "the Vault server is sealed or stopped.",
    "requests.exceptions.ConnectionError": "nothing answers at the Vault address: `glassbox vault up` starts it.",
    "httpx.HTTPStatusError": "the server answered with an error status: its body says why.",
    "httpx.ConnectError": "nothing answers at that address: is the server running, on that port?",
    "skops.io.exceptions.UntrustedTypesFoundException": "the file holds types you did not list as trusted.",
    "sklearn.exceptions.NotFittedError": "the model is used before `fit`.",
    "KeyError": "a key or column that is not there: print the keys you have.",
    "NameError": "a name that is not defined yet: run the cells above first, or check the spelling.",
    "TypeError": "a function got an argument of the wrong kind or a wrong keyword.",
    "ValueError": "an argument of the right kind with a value the function refuses.",
    "SyntaxError": "the code is not valid Python: look at the line and column shown.",
}
_CHECK_CALL = re.compile(r"\b(check_\w+)\s*\(")
_cell = {"source": "", "handled": None}


def meaning(error: BaseException) -> str:
    """What ``error`` means for a learner: the first entry of the table that its class (or a base) has."""
    for cls in type(error).__mro__:
        name = cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
        if name in _MEANINGS:
            return _MEANINGS[name]
    return "Read the message: it names what went wrong."


def _exercise_check(shell):
    """The self-check the running cell calls, if it is an exercise cell."""
    for name in _CHECK_CALL.findall(_cell["source"]):
        candidate = shell.user_ns.get(name)
        if callable(candidate) and hasattr(candidate, "exercise"):
            return candidate
    return None


def _on_exception(shell, etype, value, tb, tb_offset=None):
    check = _exercise_check(shell)
    down = infrastructure_failure(value) if isinstance(value, Exception) else None
    if check is None and down:  # the Vault or the model server stopped: one line, and the cell still fails
        sys.last_type, sys.last_value, sys.last_traceback = etype, value, tb  # for %tb
        print(f"glassbox: {down} (`%tb` shows the traceback.)", file=sys.stderr, flush=True)
        return None
    if check is None or not isinstance(value, Exception):
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset, running_compiled_code=True)
        return None
    sys.last_type, sys.last_value, sys.last_traceback = etype, value, tb  # for %tb
    from IPython.display import display

    display(raised(check, value, meaning(value) + " Run `%tb` in a new cell for the full traceback."))
    _cell["handled"] = value
    return None


def _before(info) -> None:
    _cell.update(source=info.raw_cell or "", handled=None)


def _after(result) -> None:
    """An exercise cell whose exception became feedback counts as run, so Run All goes on."""
    if result is not None and _cell["handled"] is not None:
        if result.error_in_exec is _cell["handled"]:
            result.error_in_exec = None
        if result.error_before_exec is _cell["handled"]:
            result.error_before_exec = None


def install(shell) -> None:
    """Turn exceptions in ``shell``'s exercise cells into feedback (idempotent)."""
    if getattr(shell, "_glassbox_exercise_errors", False):
        return
    shell.set_custom_exc((Exception,), _on_exception)
    shell.events.register("pre_run_cell", _before)
    shell.events.register("post_run_cell", _after)
    shell._glassbox_exercise_errors = True
