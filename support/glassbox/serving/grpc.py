"""The gRPC layer: the Open Inference Protocol's gRPC API (``inference.GRPCInferenceService``), with grpcio.

It serves what the REST layer (:mod:`.app`) serves, through the same :class:`.service.ModelService`: a
``ModelInferRequest`` is turned into the protocol's JSON form and checked by
:func:`.protocol.check_infer_request`, so a bad request gets the message REST would give, under the gRPC
status code below. It runs on the REST server's event loop (see :func:`glassbox.serving.serve`), so it shares
the API-key guard and its refresh task (a rotated key is picked up without a restart), the metrics
(endpoints ``grpc_<rpc>``, counted with the HTTP status REST would answer), and the model that the
repository extension swaps in.

===================  =====  ===========================================================================
RPC                  key?   answer
===================  =====  ===========================================================================
``ServerLive``       no     ``live: true``
``ServerReady``      no     ``ready``: false until the API key has been read
``ModelReady``       no     ``ready: true`` (NOT_FOUND for another model or version)
``ServerMetadata``   yes    name, version, extensions
``ModelMetadata``    yes    name, versions, platform, inputs, outputs (the feature names are in REST's
                            metadata: this message has no parameters)
``ModelInfer``       yes    outputs in ``raw_output_contents`` (as Triton answers; little-endian, row-major)
===================  =====  ===========================================================================

The key travels in the call's metadata, ``authorization: Bearer <key>``, as REST's header. Inputs come in
``contents`` (the field of their datatype: ``fp64_contents`` for FP64...) or all in ``raw_input_contents``
(one entry per input). Parameters (``InferParameter``) hold a bool, an int64 or a string; the explanation's
``base_value`` (a float) and ``feature_names`` (a list) are sent as JSON text in ``string_param``.

==============================  ===========================================================================
status                          when (REST's status)
==============================  ===========================================================================
``INVALID_ARGUMENT``            a request the protocol or the model cannot take (400, 415)
``UNAUTHENTICATED``             no key, or a wrong one (401)
``NOT_FOUND``                   another model or version than the one served (404)
``RESOURCE_EXHAUSTED``          more rows than the server takes (413), or a message over the size limit
``INTERNAL``                    a fault of the server's (500): logged, never a traceback to the caller
==============================  ===========================================================================

The messages and the service's stubs are the ones tritonclient ships (``tritonclient.grpc.service_pb2``, a
locked dependency): Triton's ``GRPCInferenceService``, the protocol's gRPC API in the package ``inference``
with Triton's extensions, whose RPCs this server leaves UNIMPLEMENTED. KServe's ``grpc_predict_v2.proto`` has
the same package, service, messages and field numbers, so the kserve SDK's client speaks to it too.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

import grpc
import orjson

from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pb_grpc

from glassbox.errors import GlassboxError
from glassbox.serving import protocol
from glassbox.serving.protocol import ProtocolError
from glassbox.serving.service import UNAUTHORIZED, ModelService

__all__ = ["create_server"]

_log = logging.getLogger("glassbox.serving")
_CODES = {400: grpc.StatusCode.INVALID_ARGUMENT, 401: grpc.StatusCode.UNAUTHENTICATED,
          404: grpc.StatusCode.NOT_FOUND, 413: grpc.StatusCode.RESOURCE_EXHAUSTED,
          415: grpc.StatusCode.INVALID_ARGUMENT}
# where each datatype's values travel in InferTensorContents
_CONTENTS = {"FP64": "fp64_contents", "FP32": "fp32_contents", "INT8": "int_contents", "INT16": "int_contents",
             "INT32": "int_contents", "INT64": "int64_contents", "UINT8": "uint_contents",
             "UINT16": "uint_contents", "UINT32": "uint_contents", "UINT64": "uint64_contents",
             "BOOL": "bool_contents", "BYTES": "bytes_contents"}


def create_server(current: Callable[[], ModelService], guard=None, metrics=None, *,
                  max_message_bytes: int = 4 * 1024 * 1024) -> grpc.aio.Server:
    """A gRPC server (not started, no port yet) answering with ``current()``, the service of the moment.

    ``guard``: the REST server's :class:`.auth.ApiKeyGuard` (``None``: no key, development only);
    ``max_message_bytes`` caps a request message, as REST's body limit. Create it on the running event loop.
    """
    # grpcio sets SO_REUSEPORT by default: a second server on the same port would silently share its calls
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", max_message_bytes),
                                      ("grpc.so_reuseport", 0)])
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(_Servicer(current, guard, metrics), server)
    return server


class _Servicer(pb_grpc.GRPCInferenceServiceServicer):
    """The RPCs; each goes through :meth:`_call` for the key check, error mapping and metrics."""

    def __init__(self, current: Callable[[], ModelService], guard, metrics):
        self.current, self.guard, self.metrics = current, guard, metrics

    async def _call(self, label: str, context, protected: bool, handler):
        started, status = time.perf_counter(), 200
        try:
            if protected and self.guard is not None and not await self.guard.authorize(_authorization(context)):
                raise ProtocolError(UNAUTHORIZED, status=401)
            return await handler(self.current())
        except GlassboxError as error:  # as the REST endpoint wrapper (.endpoint) answers it
            status = error.status
            if status >= 500:
                _log.error("error on gRPC %s: %s", label, error)
                await context.abort(grpc.StatusCode.INTERNAL, "internal server error")
            await context.abort(_CODES.get(status, grpc.StatusCode.INVALID_ARGUMENT), str(error))
        except Exception:  # a fault of ours: logged here, never a traceback to the caller
            status = 500
            _log.exception("unexpected error on gRPC %s", label)
            await context.abort(grpc.StatusCode.INTERNAL, "internal server error")
        finally:
            if self.metrics is not None:
                self.metrics.request("grpc_" + label, status, time.perf_counter() - started)

    async def ServerLive(self, request, context):
        async def live(service):
            return pb.ServerLiveResponse(live=True)
        return await self._call("live", context, False, live)

    async def ServerReady(self, request, context):
        async def ready(service):
            return pb.ServerReadyResponse(ready=self.guard is None or self.guard.ready)
        return await self._call("ready", context, False, ready)

    async def ModelReady(self, request, context):
        async def model_ready(service):
            service.check_model(request.name, request.version or None)
            return pb.ModelReadyResponse(ready=True)
        return await self._call("model_ready", context, False, model_ready)

    async def ServerMetadata(self, request, context):
        async def server_metadata(service):
            return pb.ServerMetadataResponse(**service.server_metadata)
        return await self._call("server_metadata", context, True, server_metadata)

    async def ModelMetadata(self, request, context):
        async def model_metadata(service):
            service.check_model(request.name, request.version or None)
            meta = service.model_metadata
            tensor = pb.ModelMetadataResponse.TensorMetadata
            return pb.ModelMetadataResponse(
                name=meta["name"], versions=meta["versions"], platform=meta["platform"],
                inputs=[tensor(**entry) for entry in meta["inputs"]],
                outputs=[tensor(**entry) for entry in meta["outputs"]])
        return await self._call("model_metadata", context, True, model_metadata)

    async def ModelInfer(self, request, context):
        async def infer(service):
            service.check_model(request.model_name, request.model_version or None)
            document, raw = _document(request)
            parsed = protocol.check_infer_request(document, service.schema, raw)
            outputs = await service.infer(parsed)
            return _response(service, request.id, outputs)
        return await self._call("infer", context, True, infer)


def _authorization(context) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            return value
    return None


def _document(request) -> tuple[dict, bytes | None]:
    """A ``ModelInferRequest`` in the protocol's JSON form, and the raw inputs' bytes joined (or ``None``)."""
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise ProtocolError(f"raw_input_contents has {len(raw)} entries for {len(request.inputs)} inputs; send one "
                            "per input, in the order of inputs")
    inputs = []
    for position, tensor in enumerate(request.inputs):
        where = f"input {tensor.name!r}"
        entry = {"name": tensor.name, "shape": list(tensor.shape), "datatype": tensor.datatype}
        parameters = _parameters(tensor.parameters, where)
        if raw:
            if tensor.HasField("contents"):
                raise ProtocolError(f"{where} has both contents and raw_input_contents; send one")
            parameters["binary_data_size"] = len(raw[position])
        else:
            entry["data"] = _contents(tensor, where)
        if parameters:
            entry["parameters"] = parameters
        inputs.append(entry)
    document: dict = {"inputs": inputs}
    if request.id:
        document["id"] = request.id
    parameters = _parameters(request.parameters, "the request")
    if parameters:
        document["parameters"] = parameters
    if request.outputs:
        document["outputs"] = []
        for output in request.outputs:
            wanted = {"name": output.name}
            output_parameters = _parameters(output.parameters, f"output {output.name!r}")
            if output_parameters:
                wanted["parameters"] = output_parameters
            document["outputs"].append(wanted)
    return document, b"".join(raw) if raw else None


def _contents(tensor, where: str) -> list:
    """The values of a tensor sent in ``contents``: the field of its datatype, and no other."""
    filled = [field.name for field, _ in tensor.contents.ListFields()]
    if not filled:
        return []
    expected = _CONTENTS.get(tensor.datatype)
    if expected is not None and filled != [expected]:
        raise ProtocolError(f"{where}: datatype {tensor.datatype} carries its values in contents.{expected}, but "
                            f"the request fills contents.{', contents.'.join(filled)}")
    return list(getattr(tensor.contents, filled[0]))


def _parameters(parameters, where: str) -> dict:
    """A ``map<string, InferParameter>`` as a dict of plain values."""
    plain = {}
    for key, parameter in parameters.items():
        choice = parameter.WhichOneof("parameter_choice")
        if choice is None:
            raise ProtocolError(f"parameter {key[:40]!r} of {where} holds no value this server reads (a bool, an "
                                "int64 or a string)")
        plain[key] = getattr(parameter, choice)
    return plain


def _parameter(value) -> pb.InferParameter:
    if type(value) is bool:
        return pb.InferParameter(bool_param=value)
    if type(value) is int:
        return pb.InferParameter(int64_param=value)
    if type(value) is str:
        return pb.InferParameter(string_param=value)
    return pb.InferParameter(string_param=orjson.dumps(value).decode())  # floats, lists: JSON text


def _response(service: ModelService, request_id: str, outputs: list[dict]) -> pb.ModelInferResponse:
    response = pb.ModelInferResponse(model_name=service.name, model_version=service.version, id=request_id)
    for output in outputs:
        data = output["data"]
        tensor = response.outputs.add(name=output["name"], datatype=output["datatype"], shape=data.shape)
        for key, value in (output.get("parameters") or {}).items():
            tensor.parameters[key].CopyFrom(_parameter(value))
        response.raw_output_contents.append(protocol.tensor_bytes(output["datatype"], data))
    return response
