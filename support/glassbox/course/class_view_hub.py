"""How a JupyterHub runs the class view (:mod:`glassbox.course.class_view`): its service entry and the roles it needs.

Shared by the workshop hub's configuration (deploy/hub/jupyterhub_config.py) and the tests' Hub; this module
imports nothing, so the Hub's process stays light.
"""

from __future__ import annotations

import sys

NAME = "class-view"
ACCESS_SCOPE = f"access:services!service={NAME}"  # what a learner's server token needs to post progress


def service(url: str, cwd: str) -> dict:
    """The Hub-managed service on ``url``; it keeps the room's records in ``cwd``. Its OAuth login asks nothing."""
    return {"name": NAME, "command": [sys.executable, "-m", "glassbox.course.class_view"], "url": url,
            "oauth_no_confirm": True, "cwd": cwd}


def roles() -> list[dict]:
    """Every learner may reach the service, to post their progress (a server token holds only scopes its user
    holds; admins reach it through the admin role), and the service reads the roster. The service itself shows
    the room to admins only."""
    return [{"name": "user", "scopes": ["self", ACCESS_SCOPE]},
            {"name": NAME, "scopes": ["list:users", "read:users"], "services": [NAME]}]
