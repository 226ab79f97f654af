"""The ``glassbox`` command: ``doctor``, ``vault``, ``lab``, ``labs``, ``workspace``, ``progress``, ``serve``."""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import sys
from pathlib import Path

from glassbox.errors import GlassboxError
from glassbox.ports import free_port


def _doctor(args) -> int:
    from glassbox import doctor

    rows = doctor.collect()
    print(doctor.render(rows))
    return 0 if doctor.ready(rows) else 1


def _vault(args) -> int:
    from glassbox import vault

    try:
        if args.action == "up":
            server = vault.up(backend=args.backend, port=args.port)
            print(f"Vault ({server.kind}, {server.backend}) at {server.addr}")
            print('Point a shell at it with: eval "$(glassbox vault env)"')
        elif args.action == "status":
            status = vault.status()
            print(status)
            return 0 if status.healthy else 1
        elif args.action == "env":
            print(vault.env_exports())
        else:
            print(vault.down())
    except GlassboxError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def _labs(args) -> int:
    from glassbox.course import build

    solutions, labs = Path(args.solutions), Path(args.labs)
    try:
        if args.action == "build":
            changed = build.build(solutions, labs)
            print(f"{len(changed)} lab(s) written" + "".join(f"\n  {path}" for path in changed))
            return 0
        problems = build.stale(solutions, labs)
    except GlassboxError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        print("Run `glassbox labs build` (or `make labs`) and commit labs/.", file=sys.stderr)
        return 1
    print(f"labs/ is in sync with solutions/ ({len(list(solutions.glob('*.ipynb')))} notebooks)")
    return 0


def _workspace(args) -> int:
    return 0 if _synced_workspace(args) else 1


def _synced_workspace(args) -> Path | None:
    """Bring the course's labs into the learner's workspace and print what happened; None on an error."""
    from glassbox.course import workspace

    folder = Path(args.workspace) if args.workspace else workspace.default_workspace(args.labs)
    try:
        report = workspace.sync(Path(args.labs), folder)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return None
    print(report.summary(), flush=True)
    return folder


def _lab(args) -> int:
    from jupyter_server.serverapp import list_running_servers

    from glassbox import vault

    root = Path(args.dir) if args.dir else _synced_workspace(args)
    if root is None:
        return 1
    try:
        server = vault.up()
    except GlassboxError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"Vault ({server.kind}, {server.backend}): VAULT_ADDR={server.addr}")
    if server.backend != "existing":
        # The root token stays in the 0600 state file: a notebook's `vault.up()` reads it into that kernel
        # alone, so JupyterLab, its terminals and other kernels' subprocesses never inherit it.
        os.environ.pop("VAULT_TOKEN", None)
    for running in list_running_servers():  # a second `make lab`: the JupyterLab already serving these labs
        if Path(running.get("root_dir", "")).resolve() == root.resolve():
            print(f"JupyterLab already runs: {running['url'].rstrip('/')}/lab?token={running['token']}")
            return 0
    port = args.port
    if not _port_free(port):
        port = free_port()
        print(f"Port {args.port} is taken by another program: JupyterLab uses port {port} instead.")
    token = secrets.token_urlsafe(24)
    print(f"JupyterLab: http://127.0.0.1:{port}/lab?token={token}", flush=True)
    as_root = ["--ServerApp.allow_root=True"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []  # containers
    os.execvp(sys.executable, [
        sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={root}",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.open_browser={not args.no_browser}", *as_root,
        f"--LabApp.app_settings_dir={_LAB_SETTINGS}",   # no "Jupyter news" pop-up, no update checks
    ])


_LAB_SETTINGS = Path(__file__).parent / "lab_settings"


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _progress(args) -> int:
    from glassbox.course import progress

    if args.reset:
        lab = args.reset.zfill(2)
        if lab not in progress.exercises():
            print(f"error: there is no lab {args.reset!r}; labs are {', '.join(progress.exercises())}", file=sys.stderr)
            return 1
        print(f"Lab {lab}: {progress.reset(lab)} recorded check(s) forgotten")
    print(progress.summary())
    return 0


def _serve(args) -> int:
    from glassbox.serving import serve

    settings = {"host": args.host, "port": args.port, "grpc_port": args.grpc_port, "model_dir": args.model_dir,
                "model_name": args.model_name}
    if args.build_model:
        settings["build_model"] = True
    try:
        serve(**settings)
    except GlassboxError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="glassbox", description="Glassbox Labs course tools.")
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("doctor", help="check that this machine can run the course").set_defaults(run=_doctor)

    vault_cmd = commands.add_parser("vault", help="the course's dev-mode Vault server")
    vault_cmd.add_argument("action", choices=["up", "status", "env", "down"])
    vault_cmd.add_argument("--backend", choices=["existing", "container", "embedded"])
    vault_cmd.add_argument("--port", type=int, help="port on 127.0.0.1 (default 8200 or $GLASSBOX_VAULT_PORT)")
    vault_cmd.set_defaults(run=_vault)

    labs_cmd = commands.add_parser("labs", help="generate labs/ from solutions/, or check it is in sync")
    labs_cmd.add_argument("action", choices=["build", "check"])
    labs_cmd.add_argument("--solutions", default="solutions")
    labs_cmd.add_argument("--labs", default="labs")
    labs_cmd.set_defaults(run=_labs)

    workspace_help = "the learner's copies (default: workspace/ beside the labs folder)"
    lab_cmd = commands.add_parser(
        "lab", help="update the learner's workspace from labs/, start the dev Vault and JupyterLab on the workspace")
    lab_cmd.add_argument("--labs", default="labs", help="the course's labs folder")
    lab_cmd.add_argument("--workspace", help=workspace_help)
    lab_cmd.add_argument("--dir", help="serve this folder as it is instead (no workspace copy)")
    lab_cmd.add_argument("--port", type=int, default=8888)
    lab_cmd.add_argument("--no-browser", action="store_true")
    lab_cmd.set_defaults(run=_lab)

    workspace_cmd = commands.add_parser(
        "workspace", help="copy new or updated labs into the learner's workspace, never over the learner's edits")
    workspace_cmd.add_argument("action", choices=["sync"])
    workspace_cmd.add_argument("--labs", default="labs", help="the course's labs folder")
    workspace_cmd.add_argument("--workspace", help=workspace_help)
    workspace_cmd.set_defaults(run=_workspace)

    progress_cmd = commands.add_parser("progress", help="which self-checks pass in each lab")
    progress_cmd.add_argument("--reset", metavar="LAB", help="forget a lab's recorded checks, e.g. 02")
    progress_cmd.set_defaults(run=_progress)

    serve_cmd = commands.add_parser(
        "serve", help="run the model server (Open Inference Protocol V2), configured by GLASSBOX_* variables")
    serve_cmd.add_argument("--host", help="address (default $GLASSBOX_HOST or 127.0.0.1)")
    serve_cmd.add_argument("--port", type=int, help="port (default $GLASSBOX_PORT or 8080)")
    serve_cmd.add_argument("--grpc-port", type=int,
                           help="also serve the gRPC API on this port (default $GLASSBOX_GRPC_PORT; unset: none)")
    serve_cmd.add_argument("--model-dir", help="artifact directory (default $GLASSBOX_MODEL_DIR or <home>/models/credit)")
    serve_cmd.add_argument("--model-name", help="name in the URLs (default: the artifact's, credit)")
    serve_cmd.add_argument("--build-model", action="store_true", help="build the course model first if missing")
    serve_cmd.set_defaults(run=_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except BrokenPipeError:  # `glassbox progress | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
