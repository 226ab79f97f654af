"""Secret masking in the notebook kernel, the way CI systems mask secrets in their logs.

Every secret value the kernel sends to or reads from Vault through ``hvac`` is remembered, and replaced by
``[masked]`` in every later cell output: stdout, stderr, display data, rich reprs (HTML, Markdown, JSON) and
error tracebacks. Each masked value is recorded as a leak, the cell ends with one line saying what was masked
and why, and :func:`leaks_in_this_cell` lets a self-check that asks for "metadata only" say "not yet".

What counts as a secret (the rule, tested in ``tests/test_masking.py``):

| where it comes from | what is a secret |
|---|---|
| any request | the token it is sent with (``X-Vault-Token``) |
| a response | ``auth.client_token``, ``wrap_info.token``, ``data.secret_id``, ``data.token``, ``data.private_key`` |
| KV v2 (``/v1/<mount>/data/<path>``), written or read | every value of the secret's data, except under a key that names an identifier (``username``, ``user``, ``login``, ``email``, ``host``, ``url``, ``port``, ``database``, ``region``, ``name``, ...) |
| transit, encrypt requests and decrypt responses | every ``plaintext``: the base64 text and the text it decodes to |
| an AppRole login | its ``secret_id`` |

Only text values of at least 6 characters are masked: shorter ones would mask ordinary words and numbers.
Accessors, ciphertext, policies, versions and lengths are metadata, never masked.
"""

from __future__ import annotations

import base64
import functools
import html
import re
import sys
import threading
from typing import Any

__all__ = ["MARKER", "install", "leaks", "leaks_in_this_cell", "mask", "remember", "watch_hvac"]

MARKER = "[masked]"
MIN_LENGTH = 6
_IDENTIFIER_KEYS = re.compile(
    r"^(user(_?name)?|login|e?mail|host(_?name)?|url|uri|endpoint|address|port|database|db|schema|region|"
    r"owner|name|description|environment|env)$", re.I)
_SECRET_FIELDS = {("auth", "client_token"), ("wrap_info", "token"), ("data", "secret_id"), ("data", "token"),
                  ("data", "private_key")}
_KV_V2 = re.compile(r"/v1/(?:[^/]+/)+?data/")
_MASKED_MESSAGES = {"stream", "display_data", "update_display_data", "execute_result", "error"}

_secrets: dict[str, str] = {}          # value (and its HTML-escaped form) -> where it came from
_leaks: list[tuple[int, str]] = []     # (cell number, what leaked)
_lock = threading.Lock()
_cell = {"number": 0}
_pattern: list = [None]                # one compiled alternation of every secret, longest first


def _compiled():
    with _lock:
        if _pattern[0] is None and _secrets:
            _pattern[0] = re.compile("|".join(map(re.escape, sorted(_secrets, key=len, reverse=True))))
        return _pattern[0]


def remember(value: Any, where: str) -> None:
    """Treat ``value`` as a secret from now on (ignored unless it is text of at least 6 characters)."""
    if not isinstance(value, str) or len(value) < MIN_LENGTH:
        return
    with _lock:
        if value not in _secrets:
            _secrets[value] = _secrets[html.escape(value)] = where
            _pattern[0] = None


def _remember_plaintext(value: Any, where: str) -> None:
    remember(value, where)
    if isinstance(value, str):
        try:
            remember(base64.b64decode(value, validate=True).decode("utf-8"), where)
        except ValueError:
            pass


def _harvest(path: str, body: Any, token: str | None, sent: bool) -> None:
    """Remember the secrets one request (``sent``) or response carries (the rule in the module docstring)."""
    remember(token, "a Vault token")
    if not isinstance(body, dict):
        return
    for outer, inner in _SECRET_FIELDS:
        part = body.get(outer)
        if isinstance(part, dict):
            remember(part.get(inner), f"{outer}.{inner} from {path}")
    remember(body.get("secret_id"), f"the secret_id sent to {path}")
    data = body.get("data")
    if _KV_V2.search(path) and isinstance(data, dict):
        values = data if sent else data.get("data")  # a write's response holds only metadata
        for key, value in (values if isinstance(values, dict) else {}).items():
            if not _IDENTIFIER_KEYS.match(str(key)):
                remember(value, f"the value of {key!r} at {path}")
    if "/transit/" in path:
        for holder in (body, data if isinstance(data, dict) else {}):
            _remember_plaintext(holder.get("plaintext"), f"transit plaintext at {path}")
            for item in holder.get("batch_input") or holder.get("batch_results") or []:
                if isinstance(item, dict):
                    _remember_plaintext(item.get("plaintext"), f"transit plaintext at {path}")


def watch_hvac() -> None:
    """Make every ``hvac`` client report the secrets it sends and receives (idempotent)."""
    from hvac.adapters import RawAdapter

    if getattr(RawAdapter.request, "_glassbox", False):
        return
    original = RawAdapter.request

    @functools.wraps(original)
    def request(self, method, url, headers=None, raise_exception=True, **kwargs):
        _harvest(url, kwargs.get("json"), self.token, sent=True)
        response = original(self, method, url, headers=headers, raise_exception=raise_exception, **kwargs)
        if "json" in response.headers.get("Content-Type", ""):
            try:
                _harvest(url, response.json(), None, sent=False)
            except ValueError:
                pass
        return response

    request._glassbox = True
    RawAdapter.request = request


def mask(content: Any) -> Any:
    """``content`` (text, or JSON-like lists and dicts of it) with every remembered secret replaced."""
    if isinstance(content, str):
        pattern = _compiled()
        return content if pattern is None else pattern.sub(_replace, content)
    if isinstance(content, dict):
        return {key: mask(value) for key, value in content.items()}
    if isinstance(content, list):
        return [mask(value) for value in content]
    return content


def _replace(match: re.Match) -> str:
    with _lock:
        _leaks.append((_cell["number"], _secrets[match.group(0)]))
    return MARKER


def leaks() -> list[tuple[int, str]]:
    """Every leak recorded in this kernel: ``(cell number, where the value came from)``."""
    with _lock:
        return list(_leaks)


def leaks_in_this_cell() -> list[str]:
    """Where the secret values that reached an output of the running cell came from (flushes output first)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, ValueError):
            pass
    with _lock:
        return sorted({where for number, where in _leaks if number == _cell["number"]})


def _say_what_was_masked(result) -> None:
    if not _secrets:
        return
    masked = leaks_in_this_cell()
    if masked:
        sys.stderr.write(
            f"glassbox masked {len(masked)} secret value(s) in this cell's output ({'; '.join(masked)}): "
            "outputs are saved in the notebook file, so print metadata (keys, lengths, versions) instead.\n")
        sys.stderr.flush()


def install(shell) -> None:
    """Mask secrets in everything ``shell``'s kernel sends to the notebook (idempotent)."""
    if getattr(shell, "_glassbox_masking", False) or getattr(shell, "kernel", None) is None:
        return
    session = shell.kernel.session
    send = session.send

    @functools.wraps(send)
    def masked_send(stream, msg_or_type, content=None, *args, **kwargs):
        msg_type = msg_or_type if isinstance(msg_or_type, str) else msg_or_type.get("header", {}).get("msg_type")
        if msg_type in _MASKED_MESSAGES and _secrets:
            if content is not None:
                content = mask(content)
            elif isinstance(msg_or_type, dict):
                msg_or_type["content"] = mask(msg_or_type.get("content"))
        return send(stream, msg_or_type, content, *args, **kwargs)

    session.send = masked_send
    shell.events.register("pre_run_cell", lambda info: _cell.update(number=_cell["number"] + 1))
    shell.events.register("post_run_cell", _say_what_was_masked)
    watch_hvac()
    shell._glassbox_masking = True
