"""The one base of the package's expected failures: :class:`GlassboxError`.

Every module raises its own subclass (``VaultError``, ``ArtifactError``, ``ProtocolError``...), each with a
one-line message that says what to do; a caller that only reports them (the ``glassbox`` command, the server's
endpoints) catches the base. ``status`` is the HTTP status a server answers the failure with: 500 unless the
subclass says the caller is at fault.
"""

__all__ = ["GlassboxError"]


class GlassboxError(Exception):
    """An expected failure of the course package; ``str(error)`` is its one-line message."""

    status: int = 500
