"""The workshop hub: JupyterHub on one machine, one Docker container per learner from the course image.

    npm ci --prefix deploy/hub                 # configurable-http-proxy, hash-checked from package-lock.json
    jupyterhub -f deploy/hub/jupyterhub_config.py

Settings (environment variables, defaults in brackets):

    GLASSBOX_HUB_PORT             the room's address, the proxy's public port [8000]
    GLASSBOX_HUB_BIND_IP          the proxy's listening address [all]
    GLASSBOX_HUB_API_PORT         the Hub's own port, on the learners' network only [8081]
    GLASSBOX_HUB_PROXY_API_PORT   the proxy's REST API, on 127.0.0.1 [8001]
    GLASSBOX_HUB_CLASS_VIEW_PORT  the class view service, on 127.0.0.1 [a free port]
    GLASSBOX_HUB_ADMIN            the instructor's user name, an admin who approves sign-ups [instructor]
    GLASSBOX_HUB_OPEN_SIGNUP      1: learners who sign up may log in at once, no approval [0]
    GLASSBOX_HUB_IMAGE            the learners' image (binder/Dockerfile, make course-image) [glassbox/course:VERSION]
    GLASSBOX_HUB_MEM_LIMIT        memory per learner, swap included [2G]
    GLASSBOX_HUB_CPU_LIMIT        CPUs per learner [1]
    GLASSBOX_HUB_PIDS_LIMIT       processes and threads per learner [512]
    GLASSBOX_HUB_CULL_TIMEOUT     seconds idle before a learner's server is stopped [3600]
    GLASSBOX_HUB_PREFIX           names the network, containers ({prefix}-NAME) and volumes [glassbox-hub]
    GLASSBOX_HUB_DIR              the Hub's state: database, cookie secret [~/.glassbox/hub]

The learners' network is a Docker bridge with inter-container traffic off: a learner's container reaches the Hub
and the proxy (at the bridge's gateway, this machine) and nothing of another learner's. Each learner's work,
their progress and their own dev Vault's state live in a volume of their own ({prefix}-work-NAME).
"""

import os
import sys
from pathlib import Path

import docker
import nativeauthenticator

from glassbox import __version__
from glassbox.course import class_view_hub
from glassbox.paths import home
from glassbox.ports import free_port

c = get_config()  # noqa: F821 (JupyterHub defines it)


def setting(name: str, default: str) -> str:
    return os.environ.get(f"GLASSBOX_HUB_{name}") or default


PREFIX = setting("PREFIX", "glassbox-hub")
STATE = Path(setting("DIR", str(home() / "hub")))
STATE.mkdir(parents=True, exist_ok=True)
WORK = "/home/learner/work"  # the learner's volume: their labs, and GLASSBOX_HOME (progress, Vault state)


def learners_network(name: str) -> str:
    """The gateway address (this machine) of the learners' bridge network, created without inter-container traffic."""
    client = docker.from_env()
    found = client.networks.list(names=[name])
    network = found[0] if found else client.networks.create(
        name, driver="bridge", options={"com.docker.network.bridge.enable_icc": "false"},
        labels={"org.glassbox.hub": PREFIX})
    network.reload()
    return network.attrs["IPAM"]["Config"][0]["Gateway"]


GATEWAY = learners_network(PREFIX)
PUBLIC_PORT = int(setting("PORT", "8000"))
CLASS_VIEW_PORT = int(setting("CLASS_VIEW_PORT", str(free_port())))

# -- the Hub and its proxy -------------------------------------------------------------------------------------
c.JupyterHub.bind_url = f"http://{setting('BIND_IP', '')}:{PUBLIC_PORT}"
c.JupyterHub.hub_ip = GATEWAY
c.JupyterHub.hub_connect_ip = GATEWAY
c.JupyterHub.hub_port = int(setting("API_PORT", "8081"))
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{setting('PROXY_API_PORT', '8001')}"
c.ConfigurableHTTPProxy.pid_file = str(STATE / "proxy.pid")
_proxy = Path(__file__).parent / "node_modules" / ".bin" / "configurable-http-proxy"
c.ConfigurableHTTPProxy.command = [str(_proxy) if _proxy.exists() else "configurable-http-proxy"]

# -- who may log in: each learner signs up with a name and password of their own ---------------------------------
ADMIN = setting("ADMIN", "instructor")
c.JupyterHub.authenticator_class = "native"
c.JupyterHub.template_paths = [str(Path(nativeauthenticator.__file__).parent / "templates")]
c.Authenticator.admin_users = {ADMIN}
c.Authenticator.allow_all = True  # everyone the authenticator accepts: signed up, approved, right password
c.NativeAuthenticator.open_signup = setting("OPEN_SIGNUP", "0") == "1"
c.NativeAuthenticator.minimum_password_length = 8
c.NativeAuthenticator.check_common_password = True

# -- one container per learner ------------------------------------------------------------------------------------
c.JupyterHub.spawner_class = "docker"
c.DockerSpawner.image = setting("IMAGE", f"glassbox/course:{__version__}")
c.DockerSpawner.pull_policy = "never"  # built here (make course-image), never fetched
c.DockerSpawner.network_name = PREFIX
c.DockerSpawner.prefix = PREFIX
c.DockerSpawner.remove = True  # a stopped server's container goes; the learner's volume stays
c.DockerSpawner.volumes = {f"{PREFIX}-work-{{username}}": WORK}
c.DockerSpawner.notebook_dir = WORK
c.DockerSpawner.mem_limit = setting("MEM_LIMIT", "2G")
c.DockerSpawner.cpu_limit = float(setting("CPU_LIMIT", "1"))
c.DockerSpawner.extra_host_config = {
    "memswap_limit": c.DockerSpawner.mem_limit,  # no swap beyond the limit: past it the kernel is killed
    "pids_limit": int(setting("PIDS_LIMIT", "512")),
    "init": True,  # reaps the learner's Vault and kernels
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges"],
}
c.DockerSpawner.extra_create_kwargs = {"labels": {"org.glassbox.hub": PREFIX}}
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 180
c.Spawner.http_timeout = 120
c.Spawner.environment = {
    "GLASSBOX_HOME": f"{WORK}/.glassbox",
    # the class view through the proxy, as the learner's container reaches it; the kernel posts progress there
    "GLASSBOX_CLASS_VIEW_URL": f"http://{GATEWAY}:{PUBLIC_PORT}/services/class-view/",
}
# JupyterHub's own server scopes, and the right to post progress to the class view
c.Spawner.server_token_scopes = ["users:activity!user", "access:servers!server", class_view_hub.ACCESS_SCOPE]

# -- services: the instructor's class view, and the idle culler ---------------------------------------------------
CULL_TIMEOUT = int(setting("CULL_TIMEOUT", "3600"))
c.JupyterHub.services = [
    class_view_hub.service(f"http://127.0.0.1:{CLASS_VIEW_PORT}", cwd=str(STATE)),  # its records in STATE
    {"name": "idle-culler", "command": [sys.executable, "-m", "jupyterhub_idle_culler",
                                        f"--timeout={CULL_TIMEOUT}", f"--cull-every={max(5, min(300, CULL_TIMEOUT // 4))}"]},
]
c.JupyterHub.load_roles = class_view_hub.roles() + [
    {"name": "idle-culler", "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
     "services": ["idle-culler"]},
]
