"""MLflow's scoring routes, which MLServer's mlflow runtime adds to its server: `POST /invocations` and
`GET /ping`, for clients written against `mlflow models serve`.

`/invocations` takes MLflow's scoring protocol (a JSON body of `dataframe_split`, `dataframe_records`,
`instances` or `inputs`, with `params`; CSV; Parquet) and is answered by MLflow's own scoring code
(`mlflow.pyfunc.scoring_server.invocations`), so the body is read, checked against the signature and
answered (`{"predictions": ...}`) as MLflow's server does; its errors are MLflow's
(`{"error_code": ..., "message": ...}`). The routes belong to the server's one MLflow model: a server of
none answers 404, one of several 400 naming them (the V2 routes name the model instead).
"""

from __future__ import annotations

import asyncio
import json

from modelplane.server.repository import ModelRepository

INVOCATIONS, PING = "/invocations", "/ping"
SCORING_PATHS = (INVOCATIONS, PING)
_TEXT = "text/plain; charset=utf-8"
_JSON = "application/json"

Answer = tuple[int, bytes, str]  # status, body, content type


async def answer(
    method: str, path: str, body: bytes, content_type: str, repository: ModelRepository
) -> Answer:
    wanted = "POST" if path == INVOCATIONS else "GET"
    if method != wanted:
        return 405, f"{path} takes {wanted}\n".encode(), _TEXT
    model, refusal = _the_mlflow_model(repository)
    if refusal is not None:
        return refusal
    if not model.ready:
        return 503, f"model {model.name} is not ready yet\n".encode(), _TEXT
    if path == PING:
        return 200, b"\n", _TEXT
    return await asyncio.to_thread(_invoke, model, body, content_type)


def _the_mlflow_model(repository: ModelRepository):
    from modelplane.runtimes.mlflow import MLflowModel

    models = [served.model for _, served in repository.items() if isinstance(served.model, MLflowModel)]
    if not models:
        return None, (
            404,
            b"Not Found: this server holds no MLflow model, which /invocations answers for\n",
            _TEXT,
        )
    if len(models) > 1:
        names = ", ".join(model.name for model in models)
        message = f"/invocations answers for one MLflow model and this server holds several ({names}): "
        message += "call /v2/models/{name}/infer instead\n"
        return None, (400, message.encode(), _TEXT)
    return models[0], None


def _invoke(model, body: bytes, content_type: str) -> Answer:
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc import scoring_server

    pyfunc = model.pyfunc
    try:
        answered = scoring_server.invocations(body, content_type, pyfunc, pyfunc.metadata.get_input_schema())
    except MlflowException as exc:
        error = {"error_code": exc.error_code, "message": exc.message}
        return exc.get_http_status_code(), json.dumps(error).encode(), _JSON
    text = answered.response
    return answered.status, text.encode() if isinstance(text, str) else text, answered.mimetype
