"""Run code in a learner's kernel through the Jupyter server's REST and websocket API, as JupyterLab does.

    kernel_id = start_kernel(server_url, token)                 # server_url: .../user/NAME/
    out = execute(server_url, kernel_id, token, "print(1 + 1)")  # what the cell printed: "2\\n"

``aexecute`` is the same as a coroutine, for many learners at once (a capacity benchmark). A cell that raises gives
:class:`CellError`; a kernel that dies meanwhile (the restarter says "restarting" or "dead", or the socket closes)
gives :class:`KernelDied`.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timezone

import httpx
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect


class CellError(RuntimeError):
    """The cell raised: its exception name and value."""


class KernelDied(RuntimeError):
    """The kernel died while the cell ran (for example killed for memory), and the server restarts it."""


def start_kernel(server_url: str, token: str, timeout: float = 60) -> str:
    """A new kernel on the learner's server; its ID."""
    answer = httpx.post(f"{server_url}api/kernels", json={"name": "python3"}, timeout=timeout,
                        headers={"Authorization": f"token {token}"})
    answer.raise_for_status()
    return answer.json()["id"]


def _request(code: str, session: str) -> dict:
    header = {"msg_id": uuid.uuid4().hex, "msg_type": "execute_request", "session": session, "username": "test",
              "date": datetime.now(timezone.utc).isoformat(), "version": "5.3"}
    return {"header": header, "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True}}


async def aexecute(server_url: str, kernel_id: str, token: str, code: str, timeout: float = 120) -> str:
    """Run ``code`` in the kernel and return what it printed to stdout."""
    session = uuid.uuid4().hex
    url = f"{server_url.replace('http', 'ws', 1)}api/kernels/{kernel_id}/channels?session_id={session}"
    socket = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {token}"},
                                                 request_timeout=timeout))
    try:
        request = _request(code, session)
        await socket.write_message(json.dumps(request))
        return await asyncio.wait_for(_collect(socket, request["header"]["msg_id"]), timeout)
    finally:
        socket.close()


async def _collect(socket, msg_id: str) -> str:
    printed, replied, idle = [], False, False
    while not (replied and idle):
        raw = await socket.read_message()
        if raw is None:
            raise KernelDied("the kernel's websocket closed")
        message = json.loads(raw)
        kind, content = message["header"]["msg_type"], message["content"]
        if kind == "status" and content["execution_state"] in ("restarting", "dead"):
            raise KernelDied(f"the kernel is {content['execution_state']}")
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        if kind == "stream" and content["name"] == "stdout":
            printed.append(content["text"])
        elif kind == "error":
            raise CellError(f"{content['ename']}: {content['evalue']}")
        elif kind == "execute_reply":
            replied = True
        elif kind == "status" and content["execution_state"] == "idle":
            idle = True
    return "".join(printed)


def execute(server_url: str, kernel_id: str, token: str, code: str, timeout: float = 120) -> str:
    """:func:`aexecute`, called from synchronous code."""
    return asyncio.run(aexecute(server_url, kernel_id, token, code, timeout))
