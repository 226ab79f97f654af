"""Lab 08's catalogue of realistic wrong answers (see tests/mistakes/__init__.py for the format).

Each ``code`` replaces the solution block(s) of its exercise's cell, written without the block's own
indentation (the harness indents it like the block it replaces). The Dockerfile review's cell has three
blocks (the FROM rule, the ARG/ENV rule, the final stage's rules), so its mistakes are triples in which only
the broken rule differs from the solution.
"""

from mistakes import Mistake

# The solution's three blocks of Exercise 1, each as its cell holds it (without its indentation).
_FROM_RULE = '''last_part = image.rsplit("/", 1)[-1]
if image not in stage_names and image != "scratch" and (
        ("@" not in last_part and ":" not in last_part) or last_part.endswith(":latest")):
    problems.add("unpinned-base")'''
_NAME_RULE = '''if any(SECRET_NAME.search(variable) for variable in declared_names(keyword, arguments)):
    problems.add("secret-in-build")'''
_FINAL_RULES = '''users = [arguments for keyword, arguments in final if keyword == "USER"]
if not users or users[-1].split(":")[0] in ("root", "0"):
    problems.add("runs-as-root")
if not any(keyword == "HEALTHCHECK" and arguments.split()[0].upper() != "NONE"
           for keyword, arguments in final):
    problems.add("no-healthcheck")'''

_ENV_NAMES = "leaks += [name for name, value in env.items() if SECRET_NAME.search(name) and value]"
_HISTORY = '''for line in history:
    assigned = re.findall(r"(\\w+)=\\S", line)
    if any(SECRET_NAME.search(name) for name in assigned) or TOKEN_SHAPE.search(line):
        leaks.append(line)'''


def _handover(role_id='orchestrator.auth.approle.read_role_id(setup.role)["data"]["role_id"]',
              wrapped='orchestrator.auth.approle.generate_secret_id(setup.role, wrap_ttl="60s")["wrap_info"]["token"]',
              extra=""):
    return f'''role_id = {role_id}
wrapped = {wrapped}
delivery = {{"role-id": role_id, "wrapped-secret-id": wrapped{extra}}}'''


def _smoke(without_key="httpx.post(infer_url, json=body)", ready="ready.status_code",
           proba='np.array(output["data"]).reshape(output["shape"])'):
    return f'''ready = httpx.get(f"{{model_server.url}}/v2/health/ready")
without_key = {without_key}
answer = httpx.post(infer_url, json=body, headers=headers).json()
output = {{item["name"]: item for item in answer["outputs"]}}["predict_proba"]
smoke = {{"ready": {ready}, "without_key": without_key.status_code,
         "proba": {proba}}}'''


MISTAKES = [
    # -- Exercise 1: review a Dockerfile --------------------------------------------------------------------
    Mistake("dockerfile-review", "only `:latest` counted as floating",
            ('if image.endswith(":latest"):\n    problems.add("unpinned-base")', _NAME_RULE, _FINAL_RULES),
            ("missed 'unpinned-base'", "no tag at all"), to_the_end=True),
    Mistake("dockerfile-review", "a registry's port taken for a tag",
            ('if image not in stage_names and image != "scratch" and (\n'
             '        ("@" not in image and ":" not in image) or image.endswith(":latest")):\n'
             '    problems.add("unpinned-base")', _NAME_RULE, _FINAL_RULES),
            ("a registry port", "missed 'unpinned-base'")),
    Mistake("dockerfile-review", "an earlier stage's name flagged as a floating base",
            ('last_part = image.rsplit("/", 1)[-1]\n'
             'if ("@" not in last_part and ":" not in last_part) or last_part.endswith(":latest"):\n'
             '    problems.add("unpinned-base")', _NAME_RULE, _FINAL_RULES),
            ("reported 'unpinned-base'", "earlier stage")),
    Mistake("dockerfile-review", "any name with KEY flagged",
            (_FROM_RULE,
             'if any(SECRET_NAME.search(variable) or "KEY" in variable.upper()\n'
             '       for variable in declared_names(keyword, arguments)):\n'
             '    problems.add("secret-in-build")', _FINAL_RULES),
            ("reported 'secret-in-build'", "not a problem there", "SECRET_NAME")),
    Mistake("dockerfile-review", "root in a build stage flagged",
            (_FROM_RULE, _NAME_RULE,
             'users = [arguments for stage in stages for keyword, arguments in stage if keyword == "USER"]\n'
             'if not users or any(user.split(":")[0] in ("root", "0") for user in users):\n'
             '    problems.add("runs-as-root")\n'
             'if not any(keyword == "HEALTHCHECK" and arguments.split()[0].upper() != "NONE"\n'
             '           for keyword, arguments in final):\n'
             '    problems.add("no-healthcheck")'),
            ("reported 'runs-as-root'", "not a problem there", "final stage")),
    Mistake("dockerfile-review", "`HEALTHCHECK NONE` counted as a health check",
            (_FROM_RULE, _NAME_RULE,
             'users = [arguments for keyword, arguments in final if keyword == "USER"]\n'
             'if not users or users[-1].split(":")[0] in ("root", "0"):\n'
             '    problems.add("runs-as-root")\n'
             'if not any(keyword == "HEALTHCHECK" for keyword, arguments in final):\n'
             '    problems.add("no-healthcheck")'),
            ("missed 'no-healthcheck'", "HEALTHCHECK NONE")),
    Mistake("dockerfile-review", "a misspelt code",
            (_FROM_RULE, _NAME_RULE, _FINAL_RULES.replace('"runs-as-root"', '"run-as-root"')),
            ("unknown code", "runs-as-root")),

    # -- Exercise 2: predict what an edit rebuilds ---------------------------------------------------------
    Mistake("cache-prediction", "predicted that the dependencies are installed again", 'prediction = "a"',
            ("not quite", "requirements.lock"), to_the_end=True),
    Mistake("cache-prediction", "predicted that only the last step runs", 'prediction = "c"',
            ("not quite", "earlier")),
    Mistake("cache-prediction", "predicted that nothing misses the cache", 'prediction = "d"',
            ("not quite", "checksums")),

    # -- Exercise 3: secrets in an image's metadata --------------------------------------------------------
    Mistake("image-leaks", "only the environment searched", _ENV_NAMES, ("build argument",), to_the_end=True),
    Mistake("image-leaks", "the history searched for token shapes only",
            _ENV_NAMES + "\nfor line in history:\n    if TOKEN_SHAPE.search(line):\n        leaks.append(line)",
            ("build argument", "NAME=value")),
    Mistake("image-leaks", "the secret's value reported with its name",
            'leaks += [f"{name}={value}" for name, value in env.items() if SECRET_NAME.search(name) and value]\n'
            + _HISTORY,
            ("value itself", "NAME")),
    Mistake("image-leaks", "any name with KEY reported",
            'leaks += [name for name, value in env.items() if (SECRET_NAME.search(name) or "KEY" in name) and value]\n'
            + _HISTORY,
            ("KEY alone",)),
    Mistake("image-leaks", "whole history lines tested with SECRET_NAME instead of their NAME=value names",
            _ENV_NAMES + "\nfor line in history:\n    if SECRET_NAME.search(line) or TOKEN_SHAPE.search(line):\n"
            "        leaks.append(line)",
            ("pip install", "not the whole line")),

    # -- Exercise 4: which finding is a real leak ----------------------------------------------------------
    Mistake("real-leak", "the spent wrapping token in the agent's directory taken for a leak", 'real_leak = "a"',
            ("not quite", "spent"), to_the_end=True),
    Mistake("real-leak", "a setting with KEY in its name taken for a leak", 'real_leak = "c"',
            ("not quite", "a setting")),
    Mistake("real-leak", "Vault's address taken for a leak", 'real_leak = "d"',
            ("not quite", "no credential")),

    # -- Exercise 5: the hand-over, as the orchestrator ----------------------------------------------------
    Mistake("handover", "the secret ID issued with the root token, not the orchestrator's",
            _handover(role_id='admin.auth.approle.read_role_id(setup.role)["data"]["role_id"]',
                      wrapped='admin.auth.approle.generate_secret_id(setup.role, wrap_ttl="60s")["wrap_info"]["token"]'),
            ("administrator's (root) token", "orchestrator"), to_the_end=True),
    Mistake("handover", "the orchestrator's own token handed over",
            _handover(wrapped="orchestrator.token"), ("orchestrator's own token",)),
    Mistake("handover", "the admin token handed over as well",
            _handover(extra=', "token": admin.token'), ("administrator", "no token")),
    # (the orchestrator itself cannot even ask for one unwrapped: its policy refuses; the root token can)
    Mistake("handover", "the secret ID itself, not wrapped (from the root token)",
            _handover(wrapped='admin.auth.approle.generate_secret_id(setup.role)["data"]["secret_id"]'),
            ("secret ID itself", "wrapping token")),
    Mistake("handover", "the role's name given as its role ID", _handover(role_id="setup.role"),
            ("not the role ID", "identifier")),
    Mistake("handover", "the wrapping token's accessor handed over",
            _handover(wrapped='orchestrator.auth.approle.generate_secret_id(setup.role, wrap_ttl="60s")["wrap_info"]["accessor"]'),
            ("not a live wrapping token",)),

    # -- Exercise 6: the smoke test ------------------------------------------------------------------------
    Mistake("smoke-test", "the flat output kept", _smoke(proba='np.array(output["data"])'),
            ("shape", "reshape"), to_the_end=True),
    Mistake("smoke-test", "the key sent with the request that must be refused",
            _smoke(without_key="httpx.post(infer_url, json=body, headers=headers)"), ("must get 401",)),
    Mistake("smoke-test", "the response kept instead of its status code", _smoke(ready="ready"),
            ("holds the response", "status code")),
    Mistake("smoke-test", "the JSON body kept instead of the status code", _smoke(ready="ready.json()"),
            ("holds the JSON body", "status code")),

    # -- Exercise 7: two days later, the agent restarts ---------------------------------------------------
    Mistake("agent-restart", "expected the spent secret ID to log in again", 'after_the_restart = "a"',
            ("not quite", "single-use"), to_the_end=True),
    Mistake("agent-restart", "expected the key file to go with the agent's container", 'after_the_restart = "c"',
            ("not quite", "tmpfs")),
    Mistake("agent-restart", "expected a token saved in the volume", 'after_the_restart = "d"',
            ("not quite", "no token sink")),
]
