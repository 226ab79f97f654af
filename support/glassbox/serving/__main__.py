"""``python -m glassbox.serving``: run the model server configured by the environment (see the package)."""

import sys

from glassbox.artifacts import ArtifactError
from glassbox.serving import ConfigError, serve
from glassbox.serving.auth import KeySourceError

try:
    serve()
except (ConfigError, ArtifactError, KeySourceError) as error:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(1)
