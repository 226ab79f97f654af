"""Self-checks for Lab 00 – Setup and orientation."""

import hvac

from glassbox.checks import exercise, expect


@exercise(lab="00", name="first-secret", title="Read your first secret back")
def check_first_secret(first_secret, client: hvac.Client, path: str, mount_point: str = "secret"):
    """``first_secret`` must be exactly the key/value pairs stored at ``path``."""
    expect(first_secret is not ..., "`first_secret` is still the stub `...`.",
           hint="Call client.secrets.kv.v2.read_secret_version(path=PATH, mount_point='secret', "
                "raise_on_deleted_version=True).")
    expect(isinstance(first_secret, dict), f"`first_secret` should be a dict, not {type(first_secret).__name__}.",
           hint="Take the pairs out of the response: response['data']['data'].")
    expect(not {"data", "metadata"} & set(first_secret),
           "`first_secret` is the whole response or its 'data' part, with the metadata still around the pairs.",
           hint="The pairs themselves are one level deeper: response['data']['data'].")
    stored = client.secrets.kv.v2.read_secret_version(
        path=path, mount_point=mount_point, raise_on_deleted_version=True)["data"]["data"]
    expect(set(first_secret) == set(stored),
           f"`first_secret` has keys {sorted(first_secret)}, the stored secret has {sorted(stored)}.",
           hint="Read the secret at PATH, the one written above.")
    expect(first_secret == stored, "the keys match but a value differs from the stored one.",
           hint="Read the latest version again rather than building the dict by hand.")
    return "you read the secret back, and printed only its keys and lengths."
