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

Triton's binary tensor extension is spoken too (what tritonclient sends by default). The body is a JSON
header of ``Inference-Header-Content-Length`` bytes followed by the tensors' raw bytes: an input whose
``parameters`` carry ``binary_data_size`` has no ``data``; its values are the next ``binary_data_size`` bytes,
little-endian and row-major, in the order of ``inputs``. They get the same checks as JSON values (count,
datatype, finiteness). ``parameters.binary_data_output: true`` asks for every output in binary (a per-output
``parameters.binary_data`` overrides it either way); a binary output carries ``binary_data_size`` instead of
``data`` and its bytes follow the JSON header in the order of ``outputs`` (``BYTES``: a 4-byte little-endian
length before each element). Shared memory and the classification extension are refused.

Top-level fields: the protocol's request has ``id``, ``parameters``, ``inputs`` and ``outputs``; extensions
travel in ``parameters``. ``model_name`` and ``model_version``, which the KServe SDK puts in every request, are
accepted when they name the model of the URL (a mismatch is a 400); any other field is refused, so that a typo
(``output``) is not silently ignored. Duplicate keys in a JSON object: RFC 8259 leaves their meaning open; this
server keeps the last one (what orjson and Python's json do), as documented here and tested.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import orjson

from glassbox.errors import GlassboxError

__all__ = ["ProtocolError", "ModelSchema", "InferenceRequest", "parse_infer_request", "check_infer_request",
           "infer_response", "error_body", "tensor_bytes", "OUTPUTS", "DEFAULT_OUTPUTS", "DATATYPES", "REQUEST_FIELDS",
           "INPUT_FIELDS", "OUTPUT_FIELDS"]

OUTPUTS = ("predict", "predict_proba", "explanation")
DEFAULT_OUTPUTS = ("predict", "predict_proba")

_FLOATS = {"FP64": np.float64, "FP32": np.float32, "FP16": np.float16}
_INTS = {
    "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
    "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
}
_REQUEST_KEYS = frozenset({"id", "parameters", "inputs", "outputs", "model_name", "model_version"})
_INPUT_KEYS = frozenset({"name", "shape", "datatype", "data", "parameters"})
_OUTPUT_KEYS = frozenset({"name", "parameters"})
# what the OpenAPI document (:mod:`.openapi`) publishes: the very sets the checks below use
REQUEST_FIELDS, INPUT_FIELDS, OUTPUT_FIELDS = _REQUEST_KEYS, _INPUT_KEYS, _OUTPUT_KEYS
DATATYPES = (*_FLOATS, *_INTS)
_NUMBER_TYPES = frozenset({int, float})
_INT_TYPES = frozenset({int})
# little-endian layouts of the binary extension (and of the gRPC API's raw contents)
_RAW = {name: np.dtype(kind).newbyteorder("<") for name, kind in {**_FLOATS, **_INTS}.items()}


class ProtocolError(GlassboxError):
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
    binary_outputs: frozenset[str] = frozenset()   # the outputs to send as binary data
    model_name: str | None = None                  # as the request body named them (the KServe SDK does)
    model_version: str | None = None


# -- parsing -----------------------------------------------------------------------------------------------

def parse_infer_request(body: bytes, schema: ModelSchema, header_length: int | None = None) -> InferenceRequest:
    """Check an inference request body against the protocol and ``schema``; raise :class:`ProtocolError`.

    ``header_length`` (Triton's ``Inference-Header-Content-Length``): the body is that many bytes of JSON, then
    the binary tensors' bytes.
    """
    raw = None
    if header_length is not None:
        if not 0 < header_length <= len(body):
            raise ProtocolError(f"Inference-Header-Content-Length is {header_length} but the body has "
                                f"{len(body)} bytes; it must be the length of the JSON header")
        body, raw = body[:header_length], memoryview(body)[header_length:]
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ProtocolError(f"the body is not valid JSON: {error}") from None
    return check_infer_request(document, schema, raw)


def check_infer_request(document, schema: ModelSchema, raw: bytes | memoryview | None = None) -> InferenceRequest:
    """Check a decoded request (a dict in the JSON form) against the protocol and ``schema``.

    ``raw``: the binary tensors' bytes, in input order (each input that has them says how many in
    ``parameters.binary_data_size``). Independent of HTTP: a gRPC layer maps ``ModelInferRequest`` to this
    form (``raw_input_contents`` joined into ``raw``) and gets the same checks and messages.
    """
    if type(document) is not dict:
        raise ProtocolError("the body must be a JSON object with an \"inputs\" list")
    unknown = document.keys() - _REQUEST_KEYS
    if unknown:
        raise ProtocolError(f"unknown field(s) in the request: {_names(unknown)}; allowed: id, parameters, "
                            "inputs, outputs (and model_name, model_version)")
    request_id = document.get("id")
    if request_id is not None and type(request_id) is not str:
        raise ProtocolError("\"id\" must be a string")
    for key in ("model_name", "model_version"):
        if document.get(key) is not None and type(document[key]) is not str:
            raise ProtocolError(f"\"{key}\" must be a string")
    parameters = _parameters(document.get("parameters"), "the request")
    binary_default = parameters.get("binary_data_output", False)
    if type(binary_default) is not bool:
        raise ProtocolError("\"binary_data_output\" must be true or false")
    inputs = document.get("inputs")
    if type(inputs) is not list or not inputs:
        raise ProtocolError("\"inputs\" must be a non-empty list of tensors")
    X = _rows(inputs, schema, raw)
    outputs, binary = _requested_outputs(document.get("outputs"), binary_default)
    return InferenceRequest(X=X, outputs=outputs, id=request_id, binary_outputs=binary,
                            model_name=document.get("model_name"), model_version=document.get("model_version"))


def _rows(inputs: list, schema: ModelSchema, raw: bytes | memoryview | None = None) -> np.ndarray:
    tensors = [_tensor_header(tensor, position) for position, tensor in enumerate(inputs)]
    raws = _binary_slices(tensors, raw)
    names = [tensor["name"] for tensor in tensors]
    index = schema._index
    if all(name in index for name in names) and (len(tensors) > 1 or schema.n_features == 1
                                                 or len(tensors[0]["shape"]) != 2):
        return _rows_per_feature(tensors, raws, schema)
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
    values = _values(tensor, shape, raws[0])
    return values.reshape(shape[0], schema.n_features)


def _rows_per_feature(tensors: list[dict], raws: list, schema: ModelSchema) -> np.ndarray:
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
    for tensor, tensor_raw in zip(tensors, raws):
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
        X[:, schema._index[tensor["name"]]] = _values(tensor, shape, tensor_raw)
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
    parameters = _parameters(tensor.get("parameters"), where)
    binary = "binary_data_size" in parameters
    for key in ("shape", "datatype") if binary else ("shape", "datatype", "data"):
        if key not in tensor:
            raise ProtocolError(f"{where} has no \"{key}\"")
    if binary:
        size = parameters["binary_data_size"]
        if type(size) is not int or size < 0:
            raise ProtocolError(f"{where}: \"binary_data_size\" must be a non-negative integer")
        if "data" in tensor:
            raise ProtocolError(f"{where} has both \"data\" and \"binary_data_size\"; send one")
    shape = tensor["shape"]
    if type(shape) is not list or not shape or any(type(d) is not int for d in shape):
        raise ProtocolError(f"{where}: \"shape\" must be a non-empty list of integers")
    if any(d < 0 for d in shape):
        raise ProtocolError(f"{where}: negative dimension in shape {shape}")
    if type(tensor["datatype"]) is not str:
        raise ProtocolError(f"{where}: \"datatype\" must be a string such as \"FP64\"")
    if "shared_memory_region" in parameters:
        raise ProtocolError(f"{where}: shared-memory tensors are not supported")
    return tensor


def _binary_slices(tensors: list[dict], raw) -> list:
    """Each tensor's slice of the binary bytes (``None`` for a JSON tensor), in input order."""
    offset, slices = 0, []
    for tensor in tensors:
        parameters = tensor.get("parameters") or {}
        if "binary_data_size" in parameters:
            if raw is None:
                raise ProtocolError(f"input {tensor['name']!r} is binary (binary_data_size) but the request has "
                                    "no Inference-Header-Content-Length header giving the JSON header's length")
            size = parameters["binary_data_size"]
            if offset + size > len(raw):
                raise ProtocolError(f"input {tensor['name']!r}: binary_data_size {size} goes past the end of the "
                                    f"body ({len(raw) - offset} bytes left after the earlier tensors)")
            slices.append(raw[offset:offset + size])
            offset += size
        else:
            slices.append(None)
    if raw is not None and offset != len(raw):
        raise ProtocolError(f"the body holds {len(raw) - offset} bytes after the binary tensors; the inputs' "
                            "binary_data_size must add up to the body's length after the JSON header")
    return slices


def _check_rows(n: int, schema: ModelSchema) -> None:
    if n == 0:
        raise ProtocolError("the batch is empty (0 rows)")
    if n > schema.max_rows:
        raise ProtocolError(f"{n} rows in one request; this server takes at most {schema.max_rows}", status=413)


def _values(tensor: dict, shape: list, raw=None) -> np.ndarray:
    """The tensor's data as a flat float64 array, after checking nesting, count, types, range and finiteness."""
    where = f"input {tensor['name']!r}"
    datatype = tensor["datatype"]
    if raw is not None:
        return _binary_values(raw, datatype, math.prod(shape), where)
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


def _binary_values(raw, datatype: str, count: int, where: str) -> np.ndarray:
    """A binary tensor's bytes as a flat float64 array, checked as JSON values are."""
    dtype = _RAW.get(datatype)
    if dtype is None:
        raise ProtocolError(f"{where}: datatype {datatype!r} is not supported; use FP64 or FP32 (or an integer "
                            "type)")
    if len(raw) != count * dtype.itemsize:
        raise ProtocolError(f"{where}: {count} values of {datatype} take {count * dtype.itemsize} bytes, "
                            f"binary_data_size says {len(raw)}")
    values = np.frombuffer(raw, dtype=dtype).astype(np.float64)
    if datatype in _FLOATS and not np.isfinite(values).all():
        raise ProtocolError(f"{where}: values must be finite (NaN or infinity found)")
    return values


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


def _requested_outputs(outputs, binary_default: bool) -> tuple[tuple[str, ...], frozenset[str]]:
    """The outputs' names, and those to send in binary (``binary_default`` unless an output says otherwise)."""
    if outputs is None:
        return DEFAULT_OUTPUTS, frozenset(DEFAULT_OUTPUTS if binary_default else ())
    if type(outputs) is not list or not outputs:
        raise ProtocolError("\"outputs\" must be a non-empty list of {\"name\": ...} objects (or be left out)")
    names, binary = [], set()
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
        wants_binary = parameters.get("binary_data", binary_default)
        if type(wants_binary) is not bool:
            raise ProtocolError(f"output {name!r}: \"binary_data\" must be true or false")
        if "classification" in parameters or "shared_memory_region" in parameters:
            raise ProtocolError(f"output {name!r}: the classification and shared-memory extensions are not "
                                "supported; ask for predict or predict_proba")
        names.append(name)
        if wants_binary:
            binary.add(name)
    return tuple(names), frozenset(binary)


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

def infer_response(model_name: str, model_version: str, request_id: str | None, outputs: list[dict],
                   binary: frozenset[str] = frozenset()) -> tuple[bytes, int | None]:
    """The body of an inference response and, when it carries binary outputs, its JSON header's length (for
    ``Inference-Header-Content-Length``; ``None`` for plain JSON). ``outputs`` hold ``name``, ``datatype``,
    ``data`` (an array, any shape: its shape is reported) and optionally ``parameters``; the outputs named in
    ``binary`` go as raw bytes after the JSON header."""
    tensors, blobs = [], []
    for output in outputs:
        data = output["data"]
        tensor = {"name": output["name"], "shape": list(data.shape), "datatype": output["datatype"]}
        parameters = dict(output.get("parameters") or {})
        if output["name"] in binary:
            blob = tensor_bytes(output["datatype"], data)
            blobs.append(blob)
            parameters["binary_data_size"] = len(blob)
        else:
            tensor["data"] = data.ravel()
        if parameters:
            tensor["parameters"] = parameters
        tensors.append(tensor)
    response = {"model_name": model_name, "model_version": model_version, "outputs": tensors}
    if request_id is not None:
        response["id"] = request_id
    header = orjson.dumps(response, option=orjson.OPT_SERIALIZE_NUMPY)
    if not blobs:
        return header, None
    return b"".join([header, *blobs]), len(header)


def tensor_bytes(datatype: str, data: np.ndarray) -> bytes:
    """A tensor's raw bytes as the binary extension (and the gRPC API's raw contents) lay them out: row-major,
    little-endian; ``BYTES`` elements each after a 4-byte little-endian length."""
    if datatype == "BYTES":
        encoded = [str(value).encode() for value in data.ravel()]
        return b"".join(len(item).to_bytes(4, "little") + item for item in encoded)
    return np.ascontiguousarray(data, dtype=_RAW[datatype]).tobytes()


def error_body(message: str) -> bytes:
    """The protocol's error body: ``{"error": "..."}``."""
    return orjson.dumps({"error": message})
