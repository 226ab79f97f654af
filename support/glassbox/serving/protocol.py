"""The Open Inference Protocol (KServe V2) over REST, JSON form: parsing and checking requests, writing answers.

This module knows the protocol and the model's *schema* (feature names, outputs, limits), nothing about HTTP
or the estimator. Everything a client can get wrong ends in :class:`ProtocolError`, which carries an HTTP
status (4xx) and a message for the ``{"error": "..."}`` body.

Inputs, two accepted forms (both row-major JSON; ``data`` flat or nested to match ``shape``):

* one tensor of shape ``[n, n_features]`` with the features in the model's order (any name; the model's
  metadata calls it ``input-0``)::

      {"inputs": [{"name": "input-0", "shape": [1, 11], "datatype": "FP64", "data": [42.0, 1.0, ...]}]}

* one tensor per feature, named after the feature, each of shape ``[n]`` or ``[n, 1]``; every feature must be
  present and no other::

      {"inputs": [{"name": "age", "shape": [1], "datatype": "FP64", "data": [42.0]}, ...]}

Datatypes: ``FP64``, ``FP32``, ``FP16`` and the integer types ``INT8``..``INT64``, ``UINT8``..``UINT64``
(values are checked against the datatype, then computed in float64). ``BOOL`` and ``BYTES`` are refused, as
are JSON booleans, nulls and strings among the values, non-finite values, empty batches, and more rows than
the server allows.

Outputs (``"outputs": [{"name": ...}]``; without it, ``predict`` and ``predict_proba``):

* ``predict``: the predicted class per row, shape ``[n]``;
* ``predict_proba``: the class probabilities, shape ``[n, n_classes]``, FP64;
* ``explanation``: each row's SHAP contributions, shape ``[n, n_features]``, FP64 on the log-odds scale of
  the positive class; its ``parameters`` carry ``base_value`` (log-odds), so that ``base_value`` plus a row's
  contributions gives the model's log-odds for that row, and ``feature_names``.

Only the JSON form is spoken: Triton's binary tensor extension (``binary_data``, ``binary_data_size``,
``binary_data_output``) and shared memory are refused with a message saying so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import orjson

__all__ = ["ProtocolError", "ModelSchema", "InferenceRequest", "parse_infer_request", "infer_response",
           "error_body", "OUTPUTS", "DEFAULT_OUTPUTS"]

OUTPUTS = ("predict", "predict_proba", "explanation")
DEFAULT_OUTPUTS = ("predict", "predict_proba")

_FLOATS = {"FP64": np.float64, "FP32": np.float32, "FP16": np.float16}
_INTS = {
    "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
    "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
}
_REQUEST_KEYS = frozenset({"id", "parameters", "inputs", "outputs"})
_INPUT_KEYS = frozenset({"name", "shape", "datatype", "data", "parameters"})
_OUTPUT_KEYS = frozenset({"name", "parameters"})
_NUMBER_TYPES = frozenset({int, float})
_INT_TYPES = frozenset({int})
_BINARY_HINT = ("this server speaks the protocol's JSON form only; with tritonclient pass binary_data=False to "
                "set_data_from_numpy and to each InferRequestedOutput")


class ProtocolError(Exception):
    """A request the protocol or the model cannot accept: ``status`` (4xx) and ``message``."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message, self.status = message, status


@dataclass(frozen=True)
class ModelSchema:
    """What a request is checked against: the model's features in order, its outputs, and the limits."""

    feature_names: tuple[str, ...]
    max_rows: int = 10_000

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def __post_init__(self):
        object.__setattr__(self, "_index", {name: i for i, name in enumerate(self.feature_names)})


@dataclass(frozen=True)
class InferenceRequest:
    """A checked inference request: the rows as a C-contiguous float64 matrix, and the outputs wanted."""

    X: np.ndarray
    outputs: tuple[str, ...]
    id: str | None = None


# -- parsing -----------------------------------------------------------------------------------------------

def parse_infer_request(body: bytes, schema: ModelSchema) -> InferenceRequest:
    """Check an inference request body against the protocol and ``schema``; raise :class:`ProtocolError`."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ProtocolError(f"the body is not valid JSON: {error}") from None
    if type(document) is not dict:
        raise ProtocolError("the body must be a JSON object with an \"inputs\" list")
    unknown = document.keys() - _REQUEST_KEYS
    if unknown:
        raise ProtocolError(f"unknown field(s) in the request: {_names(unknown)}; allowed: id, parameters, "
                            "inputs, outputs")
    request_id = document.get("id")
    if request_id is not None and type(request_id) is not str:
        raise ProtocolError("\"id\" must be a string")
    parameters = _parameters(document.get("parameters"), "the request")
    if parameters.get("binary_data_output"):
        raise ProtocolError(f"binary outputs were requested (binary_data_output): {_BINARY_HINT}")
    inputs = document.get("inputs")
    if type(inputs) is not list or not inputs:
        raise ProtocolError("\"inputs\" must be a non-empty list of tensors")
    X = _rows(inputs, schema)
    return InferenceRequest(X=X, outputs=_requested_outputs(document.get("outputs")), id=request_id)


def _rows(inputs: list, schema: ModelSchema) -> np.ndarray:
    tensors = [_tensor_header(tensor, position) for position, tensor in enumerate(inputs)]
    names = [tensor["name"] for tensor in tensors]
    index = schema._index
    if all(name in index for name in names) and (len(tensors) > 1 or schema.n_features == 1
                                                 or len(tensors[0]["shape"]) != 2):
        return _rows_per_feature(tensors, schema)
    if len(tensors) > 1:
        strangers = [name for name in names if name not in index]
        raise ProtocolError(
            f"{len(tensors)} input tensors: send either one tensor of shape [n, {schema.n_features}] or one "
            f"tensor per feature named after it; unknown feature name(s): {_names(strangers)}; the model's "
            f"features: {', '.join(schema.feature_names)}"
        )
    tensor = tensors[0]
    shape = tensor["shape"]
    if len(shape) != 2 or shape[1] != schema.n_features:
        raise ProtocolError(
            f"input {tensor['name']!r} has shape {shape}; the model takes [n, {schema.n_features}] "
            f"(n rows of the features {', '.join(schema.feature_names)}, in that order)"
        )
    _check_rows(shape[0], schema)
    values = _values(tensor, shape)
    return values.reshape(shape[0], schema.n_features)


def _rows_per_feature(tensors: list[dict], schema: ModelSchema) -> np.ndarray:
    names = [tensor["name"] for tensor in tensors]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ProtocolError(f"feature(s) sent more than once: {_names(duplicates)}")
    missing = [name for name in schema.feature_names if name not in names]
    if missing:
        raise ProtocolError(f"missing feature(s): {_names(missing)}; send one tensor per feature, all "
                            f"{schema.n_features} of them")
    n = None
    X = None
    for tensor in tensors:
        shape = tensor["shape"]
        if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
            raise ProtocolError(f"feature tensor {tensor['name']!r} has shape {shape}; expected [n] or [n, 1]")
        if n is None:
            n = shape[0]
            _check_rows(n, schema)
            X = np.empty((n, schema.n_features), dtype=np.float64)
        elif shape[0] != n:
            raise ProtocolError(f"feature tensors disagree on the number of rows: {tensor['name']!r} has "
                                f"{shape[0]}, the first one {n}")
        X[:, schema._index[tensor["name"]]] = _values(tensor, shape)
    return X


def _tensor_header(tensor, position: int) -> dict:
    if type(tensor) is not dict:
        raise ProtocolError(f"inputs[{position}] must be a JSON object (a tensor)")
    unknown = tensor.keys() - _INPUT_KEYS
    if unknown:
        raise ProtocolError(f"inputs[{position}] has unknown field(s): {_names(unknown)}")
    name = tensor.get("name")
    if type(name) is not str or not name:
        raise ProtocolError(f"inputs[{position}] needs a \"name\" (a non-empty string)")
    where = f"input {name!r}"
    for key in ("shape", "datatype", "data"):
        if key not in tensor:
            raise ProtocolError(f"{where} has no \"{key}\"")
    shape = tensor["shape"]
    if type(shape) is not list or not shape or any(type(d) is not int for d in shape):
        raise ProtocolError(f"{where}: \"shape\" must be a non-empty list of integers")
    if any(d < 0 for d in shape):
        raise ProtocolError(f"{where}: negative dimension in shape {shape}")
    if type(tensor["datatype"]) is not str:
        raise ProtocolError(f"{where}: \"datatype\" must be a string such as \"FP64\"")
    parameters = _parameters(tensor.get("parameters"), where)
    if "binary_data_size" in parameters:
        raise ProtocolError(f"{where} is sent as binary data: {_BINARY_HINT}")
    if "shared_memory_region" in parameters:
        raise ProtocolError(f"{where}: shared-memory tensors are not supported")
    return tensor


def _check_rows(n: int, schema: ModelSchema) -> None:
    if n == 0:
        raise ProtocolError("the batch is empty (0 rows)")
    if n > schema.max_rows:
        raise ProtocolError(f"{n} rows in one request; this server takes at most {schema.max_rows}", status=413)


def _values(tensor: dict, shape: list) -> np.ndarray:
    """The tensor's data as a flat float64 array, after checking nesting, count, types, range and finiteness."""
    where = f"input {tensor['name']!r}"
    datatype = tensor["datatype"]
    data = tensor["data"]
    if type(data) is not list:
        raise ProtocolError(f"{where}: \"data\" must be a JSON array")
    count = math.prod(shape)
    if data and type(data[0]) is list:
        data = _flatten(data, shape, where)
    if len(data) != count:
        raise ProtocolError(f"{where}: shape {shape} needs {count} values, \"data\" holds {len(data)}")
    kinds = set(map(type, data))
    if datatype in _FLOATS:
        if not kinds <= _NUMBER_TYPES:
            raise ProtocolError(f"{where}: every value must be a number ({_culprit(kinds)} found)")
        try:
            values = np.array(data, dtype=np.float64)
        except (OverflowError, ValueError, TypeError):
            raise ProtocolError(f"{where}: a value is not a number this server can read") from None
        if datatype != "FP64":
            with np.errstate(over="ignore"):
                values = values.astype(_FLOATS[datatype]).astype(np.float64)
        if not np.isfinite(values).all():
            raise ProtocolError(f"{where}: values must be finite (a value overflows {datatype})")
        return values
    if datatype in _INTS:
        if not kinds <= _INT_TYPES:
            raise ProtocolError(f"{where}: datatype {datatype} needs integers ({_culprit(kinds)} found)")
        info = np.iinfo(_INTS[datatype])
        if data and (min(data) < info.min or max(data) > info.max):
            raise ProtocolError(f"{where}: a value is outside the range of {datatype}")
        return np.array(data, dtype=np.float64)
    raise ProtocolError(f"{where}: datatype {datatype!r} is not supported; use FP64 or FP32 (or an integer type)")


def _flatten(data: list, shape: list, where: str) -> list:
    """Nested row-major data to a flat list; the nesting must follow ``shape`` exactly."""
    if len(shape) == 1:
        if any(type(v) is list for v in data):
            raise ProtocolError(f"{where}: nested \"data\" is deeper than the shape")
        if len(data) != shape[0]:
            raise ProtocolError(f"{where}: nested \"data\" does not match the shape: {len(data)} values where "
                                f"the shape says {shape[0]}")
        return data
    if len(data) != shape[0]:
        raise ProtocolError(f"{where}: nested \"data\" does not match the shape: {len(data)} entries where the "
                            f"shape says {shape[0]}")
    flat: list = []
    for row in data:
        if type(row) is not list:
            raise ProtocolError(f"{where}: nested \"data\" mixes numbers and lists")
        flat += _flatten(row, shape[1:], where)
    return flat


def _requested_outputs(outputs) -> tuple[str, ...]:
    if outputs is None:
        return DEFAULT_OUTPUTS
    if type(outputs) is not list or not outputs:
        raise ProtocolError("\"outputs\" must be a non-empty list of {\"name\": ...} objects (or be left out)")
    names = []
    for position, output in enumerate(outputs):
        if type(output) is not dict:
            raise ProtocolError(f"outputs[{position}] must be a JSON object")
        unknown = output.keys() - _OUTPUT_KEYS
        if unknown:
            raise ProtocolError(f"outputs[{position}] has unknown field(s): {_names(unknown)}")
        name = output.get("name")
        if type(name) is not str:
            raise ProtocolError(f"outputs[{position}] needs a \"name\" (a string)")
        if name not in OUTPUTS:
            raise ProtocolError(f"unknown output {name!r}; this model has: {', '.join(OUTPUTS)}")
        if name in names:
            raise ProtocolError(f"output {name!r} requested twice")
        parameters = _parameters(output.get("parameters"), f"output {name!r}")
        if parameters.get("binary_data"):
            raise ProtocolError(f"output {name!r} was requested as binary data: {_BINARY_HINT}")
        if "classification" in parameters or "shared_memory_region" in parameters:
            raise ProtocolError(f"output {name!r}: the classification and shared-memory extensions are not "
                                "supported; ask for predict or predict_proba")
        names.append(name)
    return tuple(names)


def _parameters(parameters, where: str) -> dict:
    if parameters is None:
        return {}
    if type(parameters) is not dict:
        raise ProtocolError(f"\"parameters\" of {where} must be a JSON object")
    return parameters


def _names(names) -> str:
    shown = sorted(str(name)[:40] for name in names)
    return ", ".join(shown[:10]) + (f" and {len(shown) - 10} more" if len(shown) > 10 else "")


def _culprit(kinds: set) -> str:
    labels = {bool: "a boolean", type(None): "null", str: "a string", list: "a list", dict: "an object"}
    return ", ".join(sorted(labels.get(kind, kind.__name__) for kind in kinds - _NUMBER_TYPES)) or "a float"


# -- writing -----------------------------------------------------------------------------------------------

def infer_response(model_name: str, model_version: str, request_id: str | None, outputs: list[dict]) -> bytes:
    """The JSON body of an inference response; ``outputs`` hold ``name``, ``datatype``, ``data`` (an array,
    any shape: its shape is reported) and optionally ``parameters``."""
    tensors = []
    for output in outputs:
        data = output["data"]
        tensor = {"name": output["name"], "shape": list(data.shape), "datatype": output["datatype"],
                  "data": data.ravel()}
        if output.get("parameters"):
            tensor["parameters"] = output["parameters"]
        tensors.append(tensor)
    response = {"model_name": model_name, "model_version": model_version, "outputs": tensors}
    if request_id is not None:
        response["id"] = request_id
    return orjson.dumps(response, option=orjson.OPT_SERIALIZE_NUMPY)


def error_body(message: str) -> bytes:
    """The protocol's error body: ``{"error": "..."}``."""
    return orjson.dumps({"error": message})
