"""Run in the KServe SDK's own venv: infer through ``kserve.InferenceRESTClient`` (protocol v2), print JSON.

argv: the server's URL, the API key, and a JSON file of rows. Prints, per case, the outputs as lists (or the
error's status and body), for the test in the course's venv to compare with the model in process.
"""

import asyncio
import json
import sys

import httpx
import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.protocol.infer_type import RequestedOutput


async def main(url: str, key: str, rows_file: str) -> None:
    X = np.array(json.load(open(rows_file)), dtype=np.float64)
    headers = {"Authorization": f"Bearer {key}"}
    client = InferenceRESTClient(RESTConfig(protocol="v2", retries=0, timeout=30))
    results = {"live": await client.is_server_live(url, headers=headers),
               "ready": await client.is_model_ready(url, "credit", headers=headers)}

    async def infer(case, binary_in, parameters=None, outputs=None, model="credit"):
        tensor = InferInput("input-0", list(X.shape), "FP64")
        tensor.set_data_from_numpy(X, binary_data=binary_in)
        request = InferRequest(model_name=model, infer_inputs=[tensor], request_id=case, parameters=parameters,
                               request_outputs=outputs)
        try:
            response = await client.infer(url, request, model_name="credit", headers=dict(headers))
        except httpx.HTTPStatusError as error:
            results[case] = {"status": error.response.status_code, "body": error.response.json()}
            return
        results[case] = {"id": response.id, "model_name": response.model_name,
                         "outputs": {o.name: o.as_numpy().tolist() for o in response.outputs}}

    await infer("json", False)
    await infer("binary-in", True)
    await infer("binary-out", True, {"binary_data_output": True},
                [RequestedOutput("predict_proba"), RequestedOutput("explanation")])
    await infer("wrong-model", False, model="other")
    await client.close()
    print(json.dumps(results))


asyncio.run(main(*sys.argv[1:4]))
