"""The container's health check: ``python -m glassbox.serving.health`` exits 0 when the server is ready.

It asks ``/v2/health/ready`` on 127.0.0.1 at ``GLASSBOX_PORT``, over HTTPS verified against the server's own
certificate file when ``GLASSBOX_TLS_FILE`` is set (that file carries the course CA), else over plain HTTP.
The Dockerfile's HEALTHCHECK and compose use it.
"""

import os
import sys

from glassbox.serving.local import is_ready


def main() -> int:
    tls_file = os.environ.get("GLASSBOX_TLS_FILE")
    url = f"{'https' if tls_file else 'http'}://127.0.0.1:{os.environ.get('GLASSBOX_PORT', '8080')}"
    return 0 if is_ready(url, tls_file) else 1


if __name__ == "__main__":
    sys.exit(main())
