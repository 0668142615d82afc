"""Models for the model-server tests, served by a real `ModelServer` when run as a script:

python tests/server/models.py --http-port P --grpc-port G
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import time

from modelplane.cli.serve import add_connection_flags, connection_limits
from modelplane.protocol.errors import InvalidInput
from modelplane.server import InferOutput, InferRequest, InferResponse, Model, ModelServer


class EchoModel(Model):
    """Answers each V2 input as an output of the same name and type; V1 instances as predictions."""

    def load(self) -> bool:
        self.ready = True
        return True

    def predict(self, payload, headers=None):
        if isinstance(payload, InferRequest):
            outputs = [InferOutput(i.name, i.shape, i.datatype, i.as_numpy(), None) for i in payload.inputs]
            return InferResponse(payload.id, self.name, outputs, parameters=payload.parameters)
        if not isinstance(payload, dict) or "instances" not in payload:
            raise InvalidInput('a V1 request is an object with "instances"')
        return {"predictions": payload["instances"]}

    def explain(self, payload, headers=None):
        return {"explanations": payload["instances"]}


class DateTimeModel(Model):
    def load(self) -> bool:
        self.ready = True
        return True

    def predict(self, payload, headers=None):
        return {"predictions": [datetime.datetime(2024, 1, 2, 3, 4, 5)]}


class SlowModel(Model):
    """A sync predict that takes a while: it must not hold up other requests."""

    def load(self) -> bool:
        self.ready = True
        return True

    def predict(self, payload, headers=None):
        if isinstance(payload, InferRequest):  # V2: the seconds in the request's parameters
            time.sleep(float((payload.parameters or {}).get("seconds", 1.0)))
            outputs = [InferOutput(i.name, i.shape, i.datatype, i.as_numpy(), None) for i in payload.inputs]
            return InferResponse(payload.id, self.name, outputs)
        time.sleep(float(payload.get("seconds", 1.0)))
        return {"predictions": ["done"]}


class StagesModel(Model):
    """Async preprocess, sync predict, async postprocess that sets a response header."""

    def load(self) -> bool:
        self.ready = True
        return True

    async def preprocess(self, payload, headers=None):
        await asyncio.sleep(0)
        return {"instances": payload["instances"], "trail": ["preprocess"]}

    def predict(self, payload, headers=None):
        return {"predictions": payload["instances"], "trail": [*payload["trail"], "predict"]}

    async def postprocess(self, result, headers=None, response_headers=None):
        response_headers["prediction-time-latency"] = "1.5"
        return {
            **result,
            "trail": [*result["trail"], "postprocess"],
            "request_id": headers.get("x-request-id"),
        }


class OwnSpansModel(Model):
    """Traces its own work with OpenTelemetry's API, as a model's author may: a span of its own, and an
    attribute on the current span (the stage's)."""

    def load(self) -> bool:
        self.ready = True
        return True

    def predict(self, payload, headers=None):
        from opentelemetry import trace

        trace.get_current_span().set_attribute("model.rows", len(payload["instances"]))
        with trace.get_tracer("own-model").start_as_current_span("own work"):
            return {"predictions": payload["instances"]}


class HeadersModel(Model):
    """Sets the response headers its V1 instances name: `{"instances": [[name, value], ...]}`."""

    def load(self) -> bool:
        self.ready = True
        return True

    def predict(self, payload, headers=None):
        return {"predictions": payload["instances"]}

    async def postprocess(self, result, headers=None, response_headers=None):
        for name, value in result["predictions"]:
            response_headers[name] = value
        return {"predictions": len(result["predictions"])}


class InstancesKindModel(Model):
    """Answers what its V1 instances were given as: a model of one's own gets lists, whatever the size."""

    def load(self) -> bool:
        self.ready = True
        return True

    def predict(self, payload, headers=None):
        return {"predictions": [type(payload["instances"]).__name__, len(payload["instances"])]}


class BrokenModel(Model):
    def load(self) -> bool:
        raise RuntimeError("weights are corrupt")


class SleepyModel(Model):
    def load(self) -> bool:
        return False


class BuggyModel(Model):
    def load(self) -> bool:
        self.ready = True
        return True

    def predict(self, payload, headers=None):
        return 1 / 0


def all_models() -> list[Model]:
    return [
        EchoModel("echo"),
        DateTimeModel("datetime"),
        SlowModel("slow"),
        StagesModel("stages"),
        BrokenModel("broken"),
        SleepyModel("sleepy"),
        BuggyModel("buggy"),
        HeadersModel("headers"),
        InstancesKindModel("instances-kind"),
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument("--grpc-max-message-length", type=int, default=64 * 1024 * 1024)
    parser.add_argument("--grace-seconds", type=float, default=30.0)
    add_connection_flags(parser)
    args = parser.parse_args()
    ModelServer(
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        grpc_max_message_length=args.grpc_max_message_length,
        grace_seconds=args.grace_seconds,
        limits=connection_limits(args),
    ).start(all_models())
