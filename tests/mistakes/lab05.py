"""Lab 05's catalogue of realistic mistakes (format: :mod:`tests.mistakes`).

``code`` replaces the solution block of the exercise's cell (for Exercise 6, the body of
``read_secret_or_none``, written without the function's indentation); the cell then calls the exercise's check.
Entries whose code raises inside the cell (a wrong mount, a rollback without or with a stale ``cas``, a TTL in
words) are turned into feedback by the kernel hook (:mod:`glassbox.checks.kernel`): hvac's message, its meaning
and the exercise's hints, which name the fix.
"""

from mistakes import Mistake

_API = '{"api_url": "https://api.example.org", "api_key": secrets.token_urlsafe(24)}'
_OLD = 'old = kv.read_secret_version(path=DB_PATH, version=1, mount_point="secret", raise_on_deleted_version=True)\n'
_CURRENT = 'current = kv.read_secret_metadata(path=DB_PATH, mount_point="secret")["data"]["current_version"]\n'
_READ = ('response = client.secrets.kv.v2.read_secret_version(path=path, mount_point="secret", '
         'raise_on_deleted_version=True)')

MISTAKES = [
    # Exercise 1: write where hvac expects it
    Mistake("kv-write", "mount in the path (`secret/data/…`)",
            f'written = kv.create_or_update_secret(path=f"secret/data/{{API_PATH}}", secret={_API}, '
            'mount_point="secret")',
            ("includes the mount",), to_the_end=True),
    Mistake("kv-write", "a mount that does not exist (`mount_point=\"kv\"`)",
            f'written = kv.create_or_update_secret(path=API_PATH, secret={_API}, mount_point="kv")',
            ("InvalidPath", "mount")),
    Mistake("kv-write", "printed the API key to see that it was stored",
            f'written = kv.create_or_update_secret(path=API_PATH, secret={_API}, mount_point="secret")\n'
            'print(kv.read_secret_version(path=API_PATH, mount_point="secret", '
            'raise_on_deleted_version=True)["data"]["data"])',
            ("printed a secret value",)),
    Mistake("kv-write", "kept the dict written instead of hvac's response",
            f'written = {_API}\nkv.create_or_update_secret(path=API_PATH, secret=written, mount_point="secret")',
            ("not hvac's response",)),
    Mistake("kv-write", "other key names (`url`, `key`)",
            'written = kv.create_or_update_secret(path=API_PATH, secret={"url": "https://api.example.org", '
            '"key": secrets.token_urlsafe(24)}, mount_point="secret")',
            ("expected", "api_key")),
    # Exercise 2: roll back (in this order: the catalogue runs them one after another in one kernel)
    Mistake("rollback", "read the latest version instead of version 1",
            'old = kv.read_secret_version(path=DB_PATH, mount_point="secret", raise_on_deleted_version=True)\n'
            + _CURRENT + 'kv.create_or_update_secret(path=DB_PATH, secret=old["data"]["data"], cas=current, '
                         'mount_point="secret")',
            ("does not hold version 1",)),
    Mistake("rollback", "wrote the whole read response back",
            _OLD + _CURRENT + 'kv.create_or_update_secret(path=DB_PATH, secret=old["data"], cas=current, '
                              'mount_point="secret")',
            ("layers around the pairs",), to_the_end=True),
    Mistake("rollback", "wrote without `cas` (check-and-set is required)",
            _OLD + 'kv.create_or_update_secret(path=DB_PATH, secret=old["data"]["data"], mount_point="secret")',
            ("InvalidRequest", "check-and-set")),
    Mistake("rollback", "`cas=1`, the version read, not the current one",
            _OLD + 'kv.create_or_update_secret(path=DB_PATH, secret=old["data"]["data"], cas=1, '
                   'mount_point="secret")',
            ("InvalidRequest", "check-and-set")),
    Mistake("rollback", "deleted the bad version instead of rolling back",
            'kv.delete_latest_version_of_secret(path=DB_PATH, mount_point="secret")',
            ("deleting the bad version is not a rollback",)),
    Mistake("rollback", "printed the old version's pairs",
            _OLD + 'print(old["data"]["data"])\n' + _CURRENT
            + 'kv.create_or_update_secret(path=DB_PATH, secret=old["data"]["data"], cas=current, '
              'mount_point="secret")',
            ("printed a secret value",)),
    # Exercise 3: predict undelete after destroy
    Mistake("predict-destroy", "predicted that undelete brings a destroyed version back", 'prediction = "a"',
            ("nothing to bring back",), to_the_end=True),
    Mistake("predict-destroy", "predicted that undelete is refused", 'prediction = "b"', ("does not refuse",)),
    Mistake("predict-destroy", "predicted an empty dict as the destroyed version's data", 'prediction = "d"',
            ("is a 404",)),
    # Exercise 4: predict what a valid token without the policy gets
    Mistake("predict-no-policy", "predicted 404 (`InvalidPath`)", 'prediction = "a"', ("never 404",),
            to_the_end=True),
    Mistake("predict-no-policy", "predicted that a valid token may read", 'prediction = "c"',
            ("only says who you are",)),
    Mistake("predict-no-policy", "predicted 400 (`InvalidRequest`)", 'prediction = "d"', ("well formed",)),
    # Exercise 5: a token for the app
    Mistake("scoped-token", "no `policies=`: the token inherits root",
            'token_response = client.auth.token.create(ttl="10m", explicit_max_ttl="1h")', ("root",),
            to_the_end=True),
    Mistake("scoped-token", "a TTL but no explicit max TTL",
            'token_response = client.auth.token.create(policies=[READER_POLICY], ttl="10m")',
            ("no explicit max TTL",)),
    Mistake("scoped-token", "a TTL in words (`ttl=\"10 minutes\"`)",
            'token_response = client.auth.token.create(policies=[READER_POLICY], ttl="10 minutes", '
            'explicit_max_ttl="1h")',
            ("InvalidRequest", "ttl")),
    Mistake("scoped-token", "kept the token string instead of the response",
            'token_response = client.auth.token.create(policies=[READER_POLICY], ttl="10m", '
            'explicit_max_ttl="1h")["auth"]["client_token"]',
            ("no 'auth' part",)),
    Mistake("scoped-token", "printed the response, token included",
            'token_response = client.auth.token.create(policies=[READER_POLICY], ttl="10m", '
            'explicit_max_ttl="1h")\nprint(token_response)',
            ("printed a secret value",)),
    Mistake("scoped-token", "a misspelt policy name",
            'token_response = client.auth.token.create(policies=["lab05-read"], ttl="10m", explicit_max_ttl="1h")',
            ("without 'lab05-reader'",)),
    # Exercise 6: handle what you mean to handle
    Mistake("read-or-none", "catches every exception",
            f'try:\n    {_READ}\nexcept Exception:\n    return None\nreturn response["data"]["data"]',
            ("Forbidden",), to_the_end=True),
    Mistake("read-or-none", "no `try`: `InvalidPath` escapes", f'{_READ}\nreturn response["data"]["data"]',
            ("InvalidPath escape",)),
    Mistake("read-or-none", "returns the whole response",
            f'try:\n    {_READ}\nexcept hvac.exceptions.InvalidPath:\n    return None\nreturn response',
            ("key/value pairs",)),
    Mistake("read-or-none", "catches `KeyError` (a dict's miss) instead of `InvalidPath`",
            f'try:\n    {_READ}\nexcept KeyError:\n    return None\nreturn response["data"]["data"]',
            ("InvalidPath escape",)),
    Mistake("read-or-none", "catches `VaultError`, Forbidden's base class",
            f'try:\n    {_READ}\nexcept hvac.exceptions.VaultError:\n    return None\n'
            'return response["data"]["data"]',
            ("Forbidden",)),
    Mistake("read-or-none", "prints the pairs it found",
            f'try:\n    {_READ}\nexcept hvac.exceptions.InvalidPath:\n    return None\n'
            'print("found:", response["data"]["data"])\nreturn response["data"]["data"]',
            ("printed a secret value",)),
]
