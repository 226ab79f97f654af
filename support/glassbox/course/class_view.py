"""The instructor's live class view: a JupyterHub service, for the Hub's admins only.

The Hub runs it as the managed service ``class-view`` (``python -m glassbox.course.class_view``) with its
service environment (``JUPYTERHUB_SERVICE_URL``, ``JUPYTERHUB_SERVICE_PREFIX``, ``JUPYTERHUB_API_TOKEN``, ...).
It listens on the port of ``JUPYTERHUB_SERVICE_URL``, at its host or at ``GLASSBOX_CLASS_VIEW_BIND``.
Learners' kernels post each self-check's outcome (:func:`glassbox.course.progress.record`).

| route, under the prefix | who may | what |
|---|---|---|
| ``POST api/progress`` | a user's token with ``access:services!service=class-view`` | one outcome, ``{"lab", "name", "passed", "message"}``, recorded under the token's user: 200, 400 for a body that is not one, 403 without a valid token |
| ``GET`` (the page) | admins, through the Hub's OAuth login | the most-failed check with its latest "not yet" message, a heatmap, a table per lab; it reloads when ``api/class`` changes (polled every 3 s) |
| ``GET api/class`` | admins | the same as JSON: ``version``, ``course``, ``learners``, ``most_failed`` |
| ``GET plot.png`` | admins | the heatmap (learners by checks) |

A learner who is not an admin gets 403 on the last three. The room's records are kept in ``class-view.json`` in
the service's working directory, rewritten after every post, so a restarted service shows the same room.
"""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path
from urllib.parse import urlparse

import mistune
from jupyterhub.services.auth import HubAuth, HubAuthenticated, HubOAuthCallbackHandler, HubOAuthenticated
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from tornado import ioloop, web
from tornado.httpclient import AsyncHTTPClient
from tornado.log import enable_pretty_logging

from glassbox.course import progress
from glassbox.paths import write_private

STATES = ("not tried", "not yet", "passed")
COLOURS = ("#d0d7de", "#b35900", "#1a7f37")   # as the self-checks' own boxes
MAX_MESSAGE = 4000
ROSTER_EVERY_S = 30
_MARKDOWN = mistune.create_markdown(escape=True)


class Room:
    """Every learner's check records, ``{user: {lab: {name: record}}}`` (:func:`progress.merge`), kept in ``path``."""

    def __init__(self, path: Path):
        self.path = path
        self.course = progress.exercises()
        self._titles = {(lab, name): title for lab, items in self.course.items() for name, title in items}
        saved = json.loads(path.read_text()) if path.exists() else {}
        self.version, self.learners = saved.get("version", 0), saved.get("learners", {})

    def add(self, user: str, post: dict) -> None:
        """Record one posted outcome under ``user``; ``ValueError`` says what is wrong with a post."""
        if not isinstance(post, dict) or set(post) != {"lab", "name", "passed", "message"}:
            raise ValueError('a post is {"lab", "name", "passed", "message"}, nothing else: the user is the token\'s')
        lab, name, passed, message = post["lab"], post["name"], post["passed"], post["message"]
        if not isinstance(passed, bool) or not isinstance(message, str):
            raise ValueError('"passed" is true or false and "message" a string')
        title = self._titles.get((lab, name))
        if title is None:
            raise ValueError(f"the course has no check {name!r} in lab {lab!r}")
        checks = self.learners.setdefault(user, {}).setdefault(lab, {})
        checks[name] = progress.merge(checks.get(name), title, passed, message[:MAX_MESSAGE])
        self.version += 1
        write_private(self.path, json.dumps({"version": self.version, "learners": self.learners}, indent=1))

    def state(self, user: str, lab: str, name: str) -> str:
        record = self.learners.get(user, {}).get(lab, {}).get(name)
        return STATES[0] if record is None else STATES[2] if record["passed"] else STATES[1]

    def most_failed(self) -> dict | None:
        """The check with the most failures across the room (then the most learners), with its latest message."""
        found: dict[tuple[str, str], dict] = {}
        for labs in self.learners.values():
            for lab, checks in labs.items():
                for name, record in checks.items():
                    if record["failures"]:
                        seen = found.setdefault((lab, name), {"failures": 0, "learners": 0, "at": ""})
                        seen["failures"] += record["failures"]
                        seen["learners"] += 1
                        if record["at"] > seen["at"]:
                            seen["at"], seen["feedback"] = record["at"], record.get("feedback", "")
        if not found:
            return None
        (lab, name), worst = max(found.items(), key=lambda item: (item[1]["failures"], item[1]["learners"]))
        return {"lab": lab, "name": name, "title": self._titles[lab, name], "failures": worst["failures"],
                "learners": worst["learners"], "feedback": worst["feedback"]}

    def users(self, roster=()) -> list[str]:
        """Everyone who posted, and the Hub's ``roster`` of learners who have not yet."""
        return sorted(set(self.learners) | set(roster))

    def view(self, roster=()) -> dict:
        """The room as JSON: each learner's state of every check of the course, and the most-failed check."""
        learners = {user: {lab: {name: {"state": self.state(user, lab, name),
                                        **{key: self.learners.get(user, {}).get(lab, {}).get(name, {}).get(key, 0)
                                           for key in ("attempts", "failures")}}
                                 for name, _ in items}
                           for lab, items in self.course.items()}
                    for user in self.users(roster)}
        return {"version": self.version, "most_failed": self.most_failed(), "learners": learners,
                "course": {lab: [{"name": name, "title": title} for name, title in items]
                           for lab, items in self.course.items()}}

    def heatmap(self, roster=()) -> bytes:
        """A PNG: one row per learner, one column per check of the course, coloured by state."""
        users = self.users(roster) or ["(nobody yet)"]
        columns = [(lab, name) for lab, items in self.course.items() for name, _ in items]
        grid = [[STATES.index(self.state(user, lab, name)) for lab, name in columns] for user in users]
        figure = Figure(figsize=(12, 1.6 + 0.3 * len(users)), layout="constrained")
        axes = figure.subplots()
        axes.imshow(grid, cmap=ListedColormap(COLOURS), vmin=0, vmax=2, aspect="auto", interpolation="nearest")
        axes.set_yticks(range(len(users)), users)
        starts = [columns.index((lab, items[0][0])) for lab, items in self.course.items()]
        axes.set_xticks(starts, [f"Lab {lab}" for lab in self.course], ha="left")
        for start in starts[1:]:
            axes.axvline(start - 0.5, color="white", linewidth=2)
        axes.set_title("Checks per learner: green passed, orange not yet, grey not tried")
        out = io.BytesIO()
        figure.savefig(out, format="png", dpi=80)
        return out.getvalue()


class _Roster:
    """The Hub's learners (up to 200 users who are not admins), asked at most every 30 s with the service's token.

    The service needs ``list:users`` and ``read:users``; without them the room shows only who has posted.
    """

    def __init__(self):
        self.names: list[str] = []
        self._asked = -ROSTER_EVERY_S

    async def __call__(self) -> list[str]:
        if time.monotonic() - self._asked >= ROSTER_EVERY_S:
            self._asked = time.monotonic()
            answer = await AsyncHTTPClient().fetch(
                os.environ["JUPYTERHUB_API_URL"] + "/users?limit=200", raise_error=False, request_timeout=5,
                headers={"Authorization": f"token {os.environ['JUPYTERHUB_API_TOKEN']}"})
            if answer.code == 200:
                self.names = [user["name"] for user in json.loads(answer.body) if not user.get("admin")]
        return self.names


class _ForAdmins(HubOAuthenticated, web.RequestHandler):
    """A page for the Hub's admins: anyone else logs in first, a learner gets 403."""

    def initialize(self, room: Room, roster: _Roster):
        self.room, self.roster = room, roster

    def prepare(self):
        if self.current_user is None:
            self.redirect(self.get_login_url())
        elif not self.current_user.get("admin"):
            raise web.HTTPError(403, "the class view is for the workshop's admins")


class _Page(_ForAdmins):
    async def get(self):
        self.render("class_view.html", view=self.room.view(await self.roster()), markdown=_MARKDOWN,
                    prefix=os.environ["JUPYTERHUB_SERVICE_PREFIX"], xsrf=self.xsrf_token.decode())


class _Class(_ForAdmins):
    async def get(self):
        self.write(self.room.view(await self.roster()))


class _Plot(_ForAdmins):
    async def get(self):
        self.set_header("Content-Type", "image/png")
        self.set_header("Cache-Control", "no-store")
        self.write(self.room.heatmap(await self.roster()))


class _Progress(HubAuthenticated, web.RequestHandler):
    """A learner's kernel posts here with its own token (no cookie: nobody can be made to post by a page)."""

    def initialize(self, room: Room, hub_auth: HubAuth):
        self.room, self.hub_auth = room, hub_auth

    @web.authenticated  # no valid token with this service's scope: 403
    def post(self):
        if self.current_user.get("kind") != "user":
            raise web.HTTPError(403, "only a learner's own token posts progress")
        try:
            self.room.add(self.current_user["name"], json.loads(self.request.body))
        except ValueError as error:
            raise web.HTTPError(400, str(error)) from None
        self.write({"recorded": self.room.version})

    def write_error(self, status_code: int, **kwargs):
        error = kwargs.get("exc_info", (None, None))[1]
        self.finish({"error": getattr(error, "log_message", None) or self._reason})


def main() -> None:
    """Serve the class view where the Hub says, keeping the room in ``./class-view.json``."""
    prefix = os.environ["JUPYTERHUB_SERVICE_PREFIX"]
    address = urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
    room = Room(Path("class-view.json").resolve())
    shown = {"room": room, "roster": _Roster()}
    app = web.Application([
        (prefix.rstrip("/"), web.RedirectHandler, {"url": prefix}),
        (prefix, _Page, shown),
        (prefix + "api/class", _Class, shown),
        (prefix + "plot.png", _Plot, shown),
        (prefix + "api/progress", _Progress, {"room": room, "hub_auth": HubAuth()}),
        (prefix + "oauth_callback", HubOAuthCallbackHandler),
    ], cookie_secret=os.urandom(32), template_path=str(Path(__file__).parent))
    # where the service's URL names another host (a Kubernetes Service), GLASSBOX_CLASS_VIEW_BIND gives its own
    app.listen(address.port, os.environ.get("GLASSBOX_CLASS_VIEW_BIND") or address.hostname)
    enable_pretty_logging()   # its requests in the Hub's log
    try:
        ioloop.IOLoop.current().start()
    except KeyboardInterrupt:   # the Hub stops its services with SIGINT
        pass


if __name__ == "__main__":
    main()
