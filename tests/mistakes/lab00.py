"""Lab 00's catalogue of realistic mistakes (format: :mod:`tests.mistakes`).

``code`` replaces the solution block of the exercise's cell; the cell then calls the exercise's check.
Entries whose code raises (the mount in the path) are turned into feedback by the kernel hook
(:mod:`glassbox.checks.kernel`), which shows hvac's message, its meaning and the exercise's hints.
"""

from mistakes import Mistake

_READ = ('response = client.secrets.kv.v2.read_secret_version(path=PATH, mount_point="secret", '
         'raise_on_deleted_version=True)\n')

MISTAKES = [
    # Exercise 1: predict what a client with a made-up token does
    Mistake("made-up-token", "predicted `True`: creating the client checked the token", 'prediction = "a"',
            ("sends nothing",), to_the_end=True),
    Mistake("made-up-token", "predicted that creating the client raises `Forbidden`", 'prediction = "c"',
            ("sends nothing",)),
    Mistake("made-up-token", "predicted that `is_authenticated()` raises `Forbidden`", 'prediction = "d"',
            ("catches the server's 403",)),
    Mistake("made-up-token", "answered `True` instead of a letter", "prediction = True",
            ("one of the letters",)),
    # Exercise 2: read the secret back
    Mistake("first-secret", "kept the whole response", _READ + "first_secret = response", ("metadata",)),
    Mistake("first-secret", "kept the response's `data` part", _READ + 'first_secret = response["data"]',
            ("metadata",)),
    Mistake("first-secret", "kept one value (the password) instead of the dict",
            _READ + 'first_secret = response["data"]["data"]["password"]', ("should be a dict", "not a str")),
    Mistake("first-secret", "built the dict by hand",
            'first_secret = {"username": "learner", "password": "hunter2-typed-by-hand"}',
            ("a value differs",), to_the_end=True),
    Mistake("first-secret", "printed the secret to see that it worked",
            _READ + 'first_secret = response["data"]["data"]\nprint(first_secret)',
            ("printed a secret value", "metadata")),
    Mistake("first-secret", "put the mount in the path (`secret/…`)",
            'response = client.secrets.kv.v2.read_secret_version(path="secret/" + PATH, mount_point="secret", '
            'raise_on_deleted_version=True)\nfirst_secret = response["data"]["data"]',
            ("InvalidPath", "mount")),
    # Exercise 3: which outputs are safe to commit
    Mistake("safe-to-commit", "counted the dev root token as safe", 'answer = "a c d"', ("is a credential",),
            to_the_end=True),
    Mistake("safe-to-commit", "counted the printed secret as safe", 'answer = "a b c"',
            ("shows the password itself",)),
    Mistake("safe-to-commit", "chose only the lengths", 'answer = "c"', ("not all that holds",)),
    Mistake("safe-to-commit", "chose the value and the token", 'answer = "b d"', ("is a credential",)),
]
