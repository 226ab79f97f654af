"""``python -m glassbox.serving``: run the model server configured by the environment (see the package)."""

import sys

from glassbox.errors import GlassboxError
from glassbox.serving import serve

try:
    serve()
except GlassboxError as error:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(1)
