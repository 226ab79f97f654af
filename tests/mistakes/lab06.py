"""Lab 06's catalogue: wrong answers a learner types into each exercise cell (see tests/mistakes/__init__.py).

Mistakes that would spend the service's single-use secret ID (a successful login of the wrong kind) are left
out on purpose: the catalogue run types the right answer after them, in the same kernel, and it must pass.
"""

from mistakes import Mistake

_POLICY = 'service_policy = """\npath "{path}" {{\n  capabilities = {capabilities}\n}}\n"""'


def _policy(path: str, capabilities: str = '["read"]', extra: str = "") -> str:
    return _POLICY.format(path=path, capabilities=capabilities)[:-3] + extra + '"""'


_PREDICTION = {
    "read its own secret": 200,
    "read version 99 of its own secret": 404,
    "write its own secret": 403,
    "read the neighbour's secret": 403,
    "list lab06/": 403,
    "read from a mount that does not exist": 403,
    "send the neighbour's path a body that is not JSON": 400,
    "use an HTTP method Vault does not know": 405,
}


def _predict(changed: dict) -> str:
    return "prediction = " + repr({**_PREDICTION, **changed})


_REWRAP_INTO_STORED = (
    "for column in personal:\n"
    "    results = in_batches(partial(transit.rewrap_data, KEY, None), [{\"ciphertext\": c} for c in stored[column]])\n"
    "    stored[column] = [item[\"ciphertext\"] for item in results]\n"
    "stored.to_csv(stored_path)\n"
)

MISTAKES = [
    # -- Exercise 1: the service's policy -------------------------------------------------------------------
    Mistake("service-policy", "a `*` wildcard over the service's folder",
            _policy("secret/data/lab06/*"), ("wildcard `*`", "today's and tomorrow's"), to_the_end=True),
    Mistake("service-policy", "a `+` wildcard for one path segment",
            _policy("secret/data/+/model-service"), ("wildcard `+`", "any one segment")),
    Mistake("service-policy", "the KV v1 path, without `data/`",
            _policy("secret/lab06/model-service"), ("secret/data/", "matches no request")),
    Mistake("service-policy", "the path without its mount",
            _policy("lab06/model-service"), ("lacks the mount",)),
    Mistake("service-policy", "`list` granted too, to find the secret",
            _policy("secret/data/lab06/model-service", '["read", "list"]'), ("['list', 'read']", "needs ['read']")),
    Mistake("service-policy", "the neighbour's path granted as well",
            _policy("secret/data/lab06/model-service",
                    extra='path "secret/data/lab06/billing-service" {\n  capabilities = ["read"]\n}\n'),
            ("also grants", "billing-service")),
    Mistake("service-policy", "everything else in the folder denied, the service's path included",
            _policy("secret/data/lab06/model-service",
                    extra='path "secret/data/lab06/*" {\n  capabilities = ["deny"]\n}\n'),
            ("denies `secret/data/lab06/*`", "a deny wins over every grant")),

    # -- Exercise 2: predict the status codes ---------------------------------------------------------------
    Mistake("status-prediction", "every refusal predicted as 403",
            _predict({"read version 99 of its own secret": 403,
                      "send the neighbour's path a body that is not JSON": 403,
                      "use an HTTP method Vault does not know": 403}),
            ("3 of 8 predictions differ", "a 404 is a permitted read of nothing"), to_the_end=True),
    Mistake("status-prediction", "a missing mount predicted as 404",
            _predict({"read from a mount that does not exist": 404}),
            ("read from a mount that does not exist", "Vault says 403 instead")),
    Mistake("status-prediction", "the body that is not JSON predicted as 403, the policy's answer",
            _predict({"send the neighbour's path a body that is not JSON": 403}),
            ("the server answers 400", "a 400 is about the request itself")),
    Mistake("status-prediction", "the unknown HTTP method predicted as 403",
            _predict({"use an HTTP method Vault does not know": 403}),
            ("the server answers 405", "the policy is never asked")),
    Mistake("status-prediction", "the codes written as strings",
            "prediction = " + repr({key: str(value) for key, value in _PREDICTION.items()}),
            ("not a status code", "as a number")),

    # -- Exercise 3: the role's settings --------------------------------------------------------------------
    Mistake("approle", "the secret-ID limits left out",
            'role_settings = dict(token_policies=[POLICY], token_ttl="10m", token_max_ttl="30m")',
            ("unlimited uses",), to_the_end=True),
    Mistake("approle", "`secret_id_num_uses=0`, read as 'no reuse'",
            'role_settings = dict(token_policies=[POLICY], token_ttl="10m", token_max_ttl="30m", '
            'secret_id_num_uses=0, secret_id_ttl="5m")',
            ("unlimited uses", "logs in again and again")),
    Mistake("approle", "bare numbers meant as minutes",
            "role_settings = dict(token_policies=[POLICY], token_ttl=10, token_max_ttl=30, secret_id_num_uses=1, "
            "secret_id_ttl=5)",
            ("token TTL 10s", "a bare number is seconds")),
    Mistake("approle", "TTL and max TTL swapped",
            'role_settings = dict(token_policies=[POLICY], token_ttl="30m", token_max_ttl="10m", '
            'secret_id_num_uses=1, secret_id_ttl="5m")',
            ("InvalidRequest", "'token_ttl' cannot be greater than 'token_max_ttl'")),
    Mistake("approle", "hours instead of minutes",
            'role_settings = dict(token_policies=[POLICY], token_ttl="10h", token_max_ttl="30h", '
            'secret_id_num_uses=1, secret_id_ttl="5m")',
            ("token TTL 10h", "too long")),

    # -- Exercise 4: the service's login --------------------------------------------------------------------
    Mistake("service-login", "a token the administrator made with the service's policy",
            'service.token = client.auth.token.create(policies=[POLICY], ttl="10m")["auth"]["client_token"]',
            ("not issued by an AppRole login", "copied to the service"), to_the_end=True),
    Mistake("service-login", "the spent wrapping token used as the service's token",
            "service.token = wrapping_token",
            ("not valid", "spent wrapping token")),
    Mistake("service-login", "the wrapping token passed as the secret ID",
            "service.auth.approle.login(role_id=role_id, secret_id=wrapping_token)",
            ("InvalidRequest", "invalid role or secret ID", "not the wrapping token")),
    Mistake("service-login", "role ID and secret ID swapped",
            "service.auth.approle.login(role_id=secret_id, secret_id=role_id)",
            ("InvalidRequest", "invalid role or secret ID", "two AppRole halves")),

    # -- Exercise 5: plaintext for transit ------------------------------------------------------------------
    Mistake("transit-batch", "the raw text sent, not base64",
            'return [{"plaintext": value} for value in values]',
            ("not its base64 encoding", "silently garbles"), to_the_end=True),
    Mistake("transit-batch", "base64 bytes, not decoded to text",
            'return [{"plaintext": base64.b64encode(value.encode("utf-8"))} for value in values]',
            ("is a bytes", "JSON API needs a str")),
    Mistake("transit-batch", "`b64encode` given the text itself",
            'return [{"plaintext": base64.b64encode(value).decode("ascii")} for value in values]',
            ("raised TypeError", "takes bytes, not text")),
    Mistake("transit-batch", "latin-1 bytes instead of UTF-8",
            'return [{"plaintext": base64.b64encode(value.encode("latin-1")).decode("ascii")} for value in values]',
            ("not valid base64 of UTF-8 text", "latin-1")),
    Mistake("transit-batch", "the base64 strings without their dicts",
            'return [base64.b64encode(value.encode("utf-8")).decode("ascii") for value in values]',
            ("a dict with a 'plaintext' key", "got a str")),

    # -- Exercise 6: rotation -------------------------------------------------------------------------------
    Mistake("rotation", "the minimum raised without rewrapping",
            "transit.rotate_key(KEY)\n"
            "latest = transit.read_key(KEY)[\"data\"][\"latest_version\"]\n"
            "transit.update_key_configuration(KEY, min_decryption_version=latest)\n",
            ("raised before rewrapping", "can no longer be decrypted, nor rewrapped"), to_the_end=True),
    Mistake("rotation", "rotated only",
            "transit.rotate_key(KEY)\n",
            ("still uses key version(s) [1]", "moves every stored ciphertext")),
    Mistake("rotation", "rewrapped, but the results never put back into `stored`",
            "transit.rotate_key(KEY)\n"
            "for column in personal:\n"
            "    results = in_batches(partial(transit.rewrap_data, KEY, None), "
            "[{\"ciphertext\": c} for c in stored[column]])\n"
            "stored.to_csv(stored_path)\n",
            ("still uses key version(s)", "put its ciphertexts back into `stored`")),
    Mistake("rotation", "rewrapped into `stored`, but the file never written",
            "transit.rotate_key(KEY)\n"
            "for column in personal:\n"
            "    results = in_batches(partial(transit.rewrap_data, KEY, None), "
            "[{\"ciphertext\": c} for c in stored[column]])\n"
            "    stored[column] = [item[\"ciphertext\"] for item in results]\n"
            "latest = transit.read_key(KEY)[\"data\"][\"latest_version\"]\n"
            "transit.update_key_configuration(KEY, min_decryption_version=latest)\n",
            ("the file on disk still holds key version(s) [1]", "never reached it",
             "can no longer be decrypted or rewrapped")),
    Mistake("rotation", "rewrapped, but the minimum left at 1",
            "transit.rotate_key(KEY)\n" + _REWRAP_INTO_STORED,
            ("min_decryption_version is 1", "still decrypts through the API")),

    # -- Exercise 7: what the minimum protects against ------------------------------------------------------
    Mistake("min-decryption", "'the old key version is destroyed'", 'answer = "a"',
            ("trim_key", "it is a setting")),
    Mistake("min-decryption", "'a leaked copy of the old key is worthless'", 'answer = "b"',
            ("never leave Vault", "a token or ciphertext"), to_the_end=True),
    Mistake("min-decryption", "'a leaked token can no longer decrypt'", 'answer = "d"',
            ("revoking the token", "still decrypts everything made with version 2")),

    # -- Exercise 8: who read the API key -------------------------------------------------------------------
    Mistake("who-read", "every response kept",
            'readers = [entry for entry in entries if entry["type"] == "response"]',
            ("the log holds 2 response(s)", "not every response"), to_the_end=True),
    Mistake("who-read", "requests and responses on the service's path",
            'readers = [entry for entry in entries if entry["request"]["path"] == f"secret/data/{SERVICE_PATH}"]',
            ("are requests", "a read's value is in the response")),
    Mistake("who-read", "the responses on the service's path",
            'readers = [entry for entry in entries if entry["type"] == "response" '
            'and entry["request"]["path"] == f"secret/data/{SERVICE_PATH}"]',
            ("you found 3 read(s)", "the log holds 2 response(s)")),
    Mistake("who-read", "compared with the API key in clear",
            'readers = [entry for entry in entries if entry["type"] == "response" '
            "and returned_api_key(entry) == api_key]",
            ("you found 0 read(s)", "never the value itself")),
    Mistake("who-read", "only the AppRole's reads",
            'readers = [entry for entry in entries if entry["type"] == "response" and returned_api_key(entry) == '
            'hashed and (entry["auth"].get("metadata") or {}).get("role_name")]',
            ("you found 1 read(s)", "the log holds 2 response(s)")),
    Mistake("who-read", "the API key printed, to compare by eye",
            'print("the API key:", api_key)\n'
            'readers = [entry for entry in entries if entry["type"] == "response" and returned_api_key(entry) == hashed]',
            ("printed a secret value", "a length, a version")),

    # -- Exercise 9: the hardening review -------------------------------------------------------------------
    Mistake("hardening", "the admin's client reviewed as the service",
            "review = dict(service=client, role=ROLE, wrap_ttl=WRAP_TTL, policy=POLICY)",
            ("uses the root token",), to_the_end=True),
    Mistake("hardening", "the wrap TTL left out",
            "review = dict(service=service, role=ROLE, wrap_ttl=None, policy=POLICY)",
            ("delivered unwrapped",)),
    Mistake("hardening", "a wrap TTL of a day, to be safe",
            'review = dict(service=service, role=ROLE, wrap_ttl="24h", policy=POLICY)',
            ("wrap TTL 24h", "too long for a secret ID in transit")),
    Mistake("hardening", "the weak demo role reviewed instead of the service's",
            'review = dict(service=service, role="lab06-weak", wrap_ttl=WRAP_TTL, policy=POLICY)',
            ("`lab06-weak` does not exist",)),

    # -- Exercise 10: what revoking a certificate changes ---------------------------------------------------
    Mistake("revocation", "'revoked means refused everywhere, at once'", 'revoked = "a"',
            ("cannot", "a list that a caller must download"), to_the_end=True),
    Mistake("revocation", "'an open connection checks the certificate on every request'", 'revoked = "c"',
            ("verifies it once, at the handshake",)),
    Mistake("revocation", "'revocation waits for the lease to end'", 'revoked = "d"',
            ("mixes up revocation and expiry", "acts at once")),
    Mistake("revocation", "two letters, to be safe", 'revoked = "b, c"',
            ("not one of the options",)),
]
