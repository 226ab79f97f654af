"""The course model in KServe's Python model server (``kserve`` 0.21), the way KServe's sklearnserver serves it.

Run by the KServe environment's python (:func:`glassbox.peers.kserve_venv`), never the course's:

    python benchmarks/kserve_model.py --model_dir DIR --model_name credit --http_port N --grpc_port M

``DIR`` holds ``model.joblib`` (written by :func:`glassbox.peers.to_mlserver`). As in sklearnserver, the model
is a ``kserve.Model`` that loads the joblib file, turns the V2 request's first input into an array with
``get_predict_input``, calls ``predict_proba`` (sklearnserver's ``PREDICT_PROBA=true``) and answers with
``get_predict_response``; the ``ModelServer`` runs with its own defaults, only the ports set.
"""

import argparse
from pathlib import Path

import joblib
from kserve import Model, ModelServer, model_server
from kserve.errors import InferenceError
from kserve.utils.utils import get_predict_input, get_predict_response


class SKLearnModel(Model):
    """A scikit-learn model from ``model_dir/model.joblib``, answering ``predict_proba``."""

    def __init__(self, name: str, model_dir: str):
        super().__init__(name)
        self.model_dir = Path(model_dir)
        self.ready = False

    def load(self) -> bool:
        self._model = joblib.load(self.model_dir / "model.joblib")
        self.ready = True
        return self.ready

    def predict(self, payload, headers=None):
        try:
            return get_predict_response(payload, self._model.predict_proba(get_predict_input(payload)), self.name)
        except Exception as error:
            raise InferenceError(str(error))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    parser.add_argument("--model_dir", required=True, help="the folder that holds model.joblib")
    args, _ = parser.parse_known_args()
    model = SKLearnModel(args.model_name, args.model_dir)
    model.load()
    ModelServer().start([model])
