"""The server's OpenAPI 3 document (``GET /v2/openapi.json``): every route it serves, generated, not copied.

The request schemas come from :mod:`.protocol`'s own field sets, datatypes and outputs (the sets its checks
use), so that the document cannot drift from what the server accepts: a field added there without a schema
here fails at import. The document is open, like health: it names no model, version or feature (those stay
behind the key, in the model metadata) and holds nothing that the protocol's public specification does not.
Tools (Swagger UI, schemathesis, client generators) can read it without a secret.
"""

from __future__ import annotations

from glassbox import __version__
from glassbox.serving import protocol

__all__ = ["PATH", "document"]

PATH = "/v2/openapi.json"
_JSON = "application/json"
_BINARY = "application/octet-stream"
_HEADER_LENGTH = "Inference-Header-Content-Length"
_OPEN: list = []   # an operation's ``security`` for the routes that need no key


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict, allowed, required=()) -> dict:
    """A closed JSON object whose fields are exactly ``allowed`` (one of :mod:`.protocol`'s field sets)."""
    if set(properties) != set(allowed):
        raise RuntimeError(f"the OpenAPI schema's fields {sorted(properties)} are not the protocol's {sorted(allowed)}")
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


_STRING = {"type": "string"}
_PARAMETERS = {"type": "object", "description": "protocol parameters; extensions travel here"}
_SHAPE = {"type": "array", "items": {"type": "integer", "minimum": -1}}

_SCHEMAS = {
    "error": {"type": "object", "properties": {"error": _STRING}, "required": ["error"],
              "description": "every error: a message, never a traceback or a server path"},
    "tensor_data": {"type": "array", "description": "row-major values, flat or nested to match the shape",
                    "items": {"anyOf": [{"type": "number"}, _ref("tensor_data")]}},
    "request_input": _object({
        "name": {"type": "string", "minLength": 1,
                 "description": "any name for one [n, n_features] tensor; else a feature's name"},
        "shape": {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 0}},
        "datatype": {"type": "string", "enum": list(protocol.DATATYPES)},
        "data": _ref("tensor_data"),
        "parameters": {**_PARAMETERS, "properties": {"binary_data_size": {"type": "integer", "minimum": 0}},
                       "description": "binary_data_size: the tensor's bytes follow the JSON header (no data)"},
    }, protocol.INPUT_FIELDS, required=("name", "shape", "datatype")),
    "request_output": _object({
        "name": {"type": "string", "enum": list(protocol.OUTPUTS)},
        "parameters": {**_PARAMETERS, "properties": {"binary_data": {"type": "boolean"}}},
    }, protocol.OUTPUT_FIELDS, required=("name",)),
    "inference_request": _object({
        "id": _STRING,
        "parameters": {**_PARAMETERS, "properties": {"binary_data_output": {"type": "boolean"}}},
        "inputs": {"type": "array", "minItems": 1, "items": _ref("request_input")},
        "outputs": {"type": "array", "minItems": 1, "items": _ref("request_output"),
                    "description": f"default: {', '.join(protocol.DEFAULT_OUTPUTS)}"},
        "model_name": {**_STRING, "description": "accepted when it names the model of the URL"},
        "model_version": {**_STRING, "description": "accepted when it names the version of the URL"},
    }, protocol.REQUEST_FIELDS, required=("inputs",)),
    "response_output": {"type": "object", "required": ["name", "shape", "datatype"], "properties": {
        "name": {"type": "string", "enum": list(protocol.OUTPUTS)},
        "shape": _SHAPE, "datatype": _STRING, "parameters": _PARAMETERS,
        "data": {"type": "array", "items": {"anyOf": [{"type": "number"}, _STRING]}}}},
    "inference_response": {"type": "object", "required": ["model_name", "model_version", "outputs"],
                           "properties": {"model_name": _STRING, "model_version": _STRING, "id": _STRING,
                                          "outputs": {"type": "array", "items": _ref("response_output")}}},
    "metadata_tensor": {"type": "object", "required": ["name", "datatype", "shape"],
                        "properties": {"name": _STRING, "datatype": _STRING, "shape": _SHAPE}},
    "model_metadata": {"type": "object", "required": ["name", "versions", "platform", "inputs", "outputs"],
                       "properties": {"name": _STRING, "versions": {"type": "array", "items": _STRING},
                                      "platform": _STRING, "parameters": _PARAMETERS,
                                      "inputs": {"type": "array", "items": _ref("metadata_tensor")},
                                      "outputs": {"type": "array", "items": _ref("metadata_tensor")}}},
    "server_metadata": {"type": "object", "required": ["name", "version", "extensions"],
                        "properties": {"name": _STRING, "version": _STRING,
                                       "extensions": {"type": "array", "items": _STRING}}},
}

_REASONS = {400: "bad request", 401: "no or wrong API key", 404: "unknown model", 408: "the body came too slowly",
            413: "body or batch too large (the connection then closes)", 415: "not JSON (or binary with "
            f"{_HEADER_LENGTH})", 500: "a fault of the server's (logged; no traceback)"}


_HEADER_PARAMETER = {"name": _HEADER_LENGTH, "in": "header", "required": False,
                     "schema": {"type": "integer", "minimum": 0},
                     "description": "Triton's binary tensor extension: the length of the body's JSON header"}


def _json(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {_JSON: {"schema": schema}}}


def _operation(summary: str, ok: dict | None, errors: tuple[int, ...], *, protected: bool, **extra) -> dict:
    """An operation answering ``ok`` (200; ``None``: never) or an error body with one of ``errors`` (and 500,
    and 401 when ``protected``)."""
    statuses = sorted({*errors, 500, *((401,) if protected else ())})
    responses = {**({"200": ok} if ok else {}),
                 **{str(status): _json(_ref("error"), _REASONS[status]) for status in statuses}}
    return {"summary": summary, "responses": responses, **({} if protected else {"security": _OPEN}), **extra}


def _name(*more: str) -> list[dict]:
    return [{"name": name, "in": "path", "required": True, "schema": _STRING} for name in ("name", *more)]


def _model_paths(suffix: str, operation: dict) -> dict:
    """The operation at ``/v2/models/{name}<suffix>`` and at its ``/versions/{version}`` form."""
    return {f"/v2/models/{{name}}{suffix}": {**operation, "parameters": _name()},
            f"/v2/models/{{name}}/versions/{{version}}{suffix}": {**operation, "parameters": _name("version")}}


def _infer() -> dict:
    """The inference operation: JSON or Triton's binary tensor extension, both ways."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    ok = {"description": f"the outputs; binary outputs asked for: a JSON header of {_HEADER_LENGTH} bytes, then "
                         "the tensors' bytes",
          "content": {_JSON: {"schema": _ref("inference_response")}, _BINARY: binary},
          "headers": {_HEADER_LENGTH: {"schema": {"type": "integer"}, "description": "binary answers only"}}}
    return {**_operation("inference", ok, (400, 404, 408, 413, 415), protected=True),
            "requestBody": {"required": True, "content": {_JSON: {"schema": _ref("inference_request")},
                                                          _BINARY: binary}}}


def document(*, extensions: tuple[str, ...] = ()) -> dict:
    """The OpenAPI 3.0 document of a server listing ``extensions`` (``model_repository`` adds its routes)."""
    ready = {"type": "object", "required": ["ready"],
             "properties": {"ready": {"type": "boolean"}, "error": _STRING}}
    paths = {
        "/v2/health/live": {"get": _operation("liveness", _json({"type": "object", "required": ["live"], "properties": {
            "live": {"type": "boolean"}}}), (), protected=False)},
        "/v2/health/ready": {"get": {**_operation("readiness", _json(ready), (), protected=False), "responses": {
            "200": _json(ready), "503": _json(ready, "the API key has not been read yet"),
            "500": _json(_ref("error"), _REASONS[500])}}},
        "/v2": {"get": _operation("server metadata", _json(_ref("server_metadata")), (), protected=True)},
        **_model_paths("", {"get": _operation("model metadata", _json(_ref("model_metadata")), (404,),
                                              protected=True)}),
        **_model_paths("/ready", {"get": _operation("model readiness", _json({
            "type": "object", "required": ["name", "ready"],
            "properties": {"name": _STRING, "ready": {"type": "boolean"}}}), (404,), protected=False)}),
        **{path: {**item, "parameters": [*item["parameters"], _HEADER_PARAMETER]}
           for path, item in _model_paths("/infer", {"post": _infer()}).items()},
        "/metrics": {"get": _operation("Prometheus metrics", {"description": "the text exposition format", "content": {
            "text/plain": {"schema": _STRING}}}, (), protected=False)},
        PATH: {"get": _operation("this document", _json({"type": "object"}), (), protected=False)},
    }
    if "model_repository" in extensions:
        def body(parameters: dict) -> dict:
            return {"required": False, "content": {_JSON: {"schema": {"type": "object", "properties": {
                "parameters": {**_PARAMETERS, "properties": parameters}}}}}}

        entry = {"type": "object", "required": ["name", "version", "state", "reason"], "properties": {
            "name": _STRING, "version": _STRING, "state": _STRING, "reason": _STRING}}
        loaded = {"type": "object", "required": ["name", "version", "previous_version", "manifest_sha256"],
                  "properties": {key: _STRING for key in ("name", "version", "previous_version", "manifest_sha256")}}
        paths |= {
            "/v2/repository/index": {"post": _operation("the repository's models", _json({
                "type": "array", "items": entry}), (400, 413), protected=True, requestBody=body({}))},
            "/v2/repository/models/{name}/load": {"parameters": _name(), "post": _operation(
                "load the artifact on disk (a hot swap)", _json(loaded), (400, 404, 413), protected=True,
                requestBody=body({"manifest_sha256": {**_STRING, "description": "the new artifact's pin"}}))},
            "/v2/repository/models/{name}/unload": {"parameters": _name(), "post": _operation(
                "refused: the server's only model stays loaded", None, (400, 404, 413),
                protected=True, requestBody=body({}))},
        }
    return {
        "openapi": "3.0.3",
        "info": {"title": "Glassbox model server: the Open Inference Protocol (V2)", "version": __version__,
                 "license": {"name": "Apache-2.0"}},
        "paths": paths,
        "components": {"schemas": _SCHEMAS,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "the server's API key"}}},
        "security": [{"bearer": []}],
    }
