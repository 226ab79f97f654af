"""Run in the KServe SDK's own venv: infer through ``kserve.InferenceGRPCClient``, print JSON.

argv: the server's gRPC target (``host:port``), the API key, and a JSON file of rows. Prints, per case, the
outputs as lists and the explanation's parameters (or the error's gRPC status and details), for the test in
the course's venv to compare with the model in process and with REST.
"""

import asyncio
import json
import sys

import grpc
import numpy as np
from kserve import InferenceGRPCClient, InferInput, InferRequest
from kserve.protocol.infer_type import RequestedOutput


async def main(target: str, key: str, rows_file: str) -> None:
    X = np.array(json.load(open(rows_file)), dtype=np.float64)
    headers = (("authorization", f"Bearer {key}"),)
    client = InferenceGRPCClient(target, retries=0, timeout=30)
    results = {"live": await client.is_server_live(), "ready": await client.is_server_ready(),
               "model_ready": await client.is_model_ready("credit")}

    async def infer(case, tensor, outputs=None, metadata=headers):
        request = InferRequest(model_name="credit", infer_inputs=[tensor], request_id=case, request_outputs=outputs)
        try:
            response = await client.infer(request, headers=metadata)
        except grpc.aio.AioRpcError as error:
            results[case] = {"code": error.code().name, "details": error.details()}
            return
        results[case] = {"id": response.id, "model_name": response.model_name,
                         "outputs": {o.name: o.as_numpy().tolist() for o in response.outputs},
                         "parameters": {o.name: {k: getattr(v, v.WhichOneof("parameter_choice"))
                                                 for k, v in (o.parameters or {}).items()}
                                        for o in response.outputs}}

    raw = InferInput("input-0", list(X.shape), "FP64")
    raw.set_data_from_numpy(X)                                    # to_grpc(): raw_input_contents
    await infer("raw", raw)
    contents = InferInput("input-0", list(X.shape), "FP64", data=X.ravel().tolist())  # contents.fp64_contents
    await infer("contents", contents,
                [RequestedOutput("predict_proba"), RequestedOutput("explanation"), RequestedOutput("predict")])
    await infer("no-key", InferInput("input-0", list(X.shape), "FP64", data=X.ravel().tolist()), metadata=())
    short = InferInput("input-0", [X.shape[0], X.shape[1] - 1], "FP64", data=X[:, :-1].ravel().tolist())
    await infer("bad-shape", short)
    await client.close()
    print(json.dumps(results))


asyncio.run(main(*sys.argv[1:4]))
