"""Payload logs written to buckets, as KServe's agent writes them when a logger's `url` is one: real S3
(moto), GCS (its emulator) and Azure Blob Storage (Azurite) servers, read back with their own client
libraries; batches, formats, a marshaller, and a bucket that refuses."""

from __future__ import annotations

import base64
import csv
import io
import json
import time

import boto3
import orjson
import pytest
from azure.storage.blob import BlobServiceClient
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage as gcs

from modelplane.protocol import http_server
from modelplane.telemetry.payload_blob import BlobLogTarget
from modelplane.telemetry.payload_delivery import DeliverySettings
from tests.local.gateway.test_payload_logging import (  # noqa: F401
    gateway_for,
    metric,
    predict,
    replica,
    spec,
    status_server,
)
from tests.storage.servers import start_azurite, start_gcs_emulator, start_moto

S3_CONFIG = (("access_key_id", "testing"), ("secret_access_key", "testing"), ("region", "us-east-1"))
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
QUICK = DeliverySettings(max_attempts=2, backoff_initial=0.05, backoff_max=0.2, send_timeout=5)


@pytest.fixture(scope="module")
def s3():
    server = start_moto()
    client = boto3.client(
        "s3",
        endpoint_url=server.url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket="logs")
    yield server, client
    server.stop()


def s3_target(server, **fields) -> BlobLogTarget:
    return BlobLogTarget(config=(*S3_CONFIG, ("endpoint_url", server.url)), **fields)


def objects(client, prefix: str = "") -> dict[str, bytes]:
    listed = client.list_objects_v2(Bucket="logs", Prefix=prefix).get("Contents", [])
    return {item["Key"]: client.get_object(Bucket="logs", Key=item["Key"])["Body"].read() for item in listed}


def wait_for(found, count: int, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        got = found()
        if len(got) >= count or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def test_each_request_and_answer_is_an_object_named_as_kserve_names_them(replica, s3):  # noqa: F811
    server, client = s3
    log = spec("s3://logs/payloads", blob=s3_target(server, path="day-1"))
    with gateway_for(replica, log) as (_, http):
        assert predict(http, [[1, 2]], **{"x-request-id": "ok-1"}).status_code == 200
        assert predict(http, [["bad"]], **{"x-request-id": "bad-1"}).status_code == 400
    stored = wait_for(lambda: objects(client, "payloads/"), 4)
    folder = "payloads/default/status/predictor/day-1"
    assert sorted(stored) == [
        f"{folder}/bad-1-request.json",
        f"{folder}/bad-1-response.json",
        f"{folder}/ok-1-request.json",
        f"{folder}/ok-1-response.json",
    ]
    request = json.loads(stored[f"{folder}/ok-1-request.json"])
    assert request["reqType"] == "org.kubeflow.serving.inference.request"
    assert request["id"] == "ok-1" and request["contentType"] == "application/json"
    assert (request["inferenceService"], request["namespace"], request["component"]) == (
        "status",
        "default",
        "predictor",
    )
    assert json.loads(base64.b64decode(request["bytes"])) == {"instances": [[1, 2]]}
    assert request["url"] == "s3://logs/payloads" and request["occurrenceTime"].endswith("Z")
    assert "statusCode" not in request
    refused = json.loads(stored[f"{folder}/bad-1-response.json"])
    assert refused["statusCode"] == 400 and refused["revision"] == "status-predictor-00001"
    assert json.loads(base64.b64decode(refused["bytes"])) == {"error": "the instance is bad"}


def test_a_batch_waits_until_it_is_full_and_stopping_writes_what_is_left(replica, s3):  # noqa: F811
    server, client = s3
    log = spec("s3://logs/batched", blob=s3_target(server, batch_size=4))
    with gateway_for(replica, log) as (_, http):
        for index in range(3):
            predict(http, [[index]], **{"x-request-id": f"b-{index}"})
        full = wait_for(lambda: objects(client, "batched/"), 1)
        time.sleep(0.3)
        assert len(objects(client, "batched/")) == 1  # the two records left wait for two more
    stored = wait_for(lambda: objects(client, "batched/"), 2)
    assert len(stored) == 2
    first = json.loads(full[next(iter(full))])
    assert [record["id"] for record in first] == ["b-0", "b-0", "b-1", "b-1"]
    assert next(iter(full)).endswith("/b-0-request.json")  # named after its first record
    (rest,) = [json.loads(body) for key, body in stored.items() if key not in full]
    assert [record["id"] for record in rest] == ["b-2", "b-2"]


def test_a_batch_interval_writes_a_batch_that_has_not_filled(replica, s3):  # noqa: F811
    server, client = s3
    log = spec("s3://logs/timed", blob=s3_target(server, batch_size=100, batch_interval=0.2))
    with gateway_for(replica, log) as (_, http):
        predict(http, [[1]], **{"x-request-id": "t-1"})
        stored = wait_for(lambda: objects(client, "timed/"), 1, timeout=5)
        assert len(stored) == 1
        assert [record["id"] for record in json.loads(next(iter(stored.values())))] == ["t-1", "t-1"]


def test_a_bucket_that_is_not_there_costs_requests_nothing_and_its_losses_are_counted(replica, s3):  # noqa: F811
    server, _ = s3
    log = spec("s3://no-such-bucket/x", blob=s3_target(server))
    dropped = {"sink": "s3://no-such-bucket/x/default/status/predictor", "reason": "undeliverable"}
    with gateway_for(replica, log, QUICK) as (gateway, http):
        answers = [predict(http, [[1]]) for _ in range(3)]
        assert {answer.status_code for answer in answers} == {200}
        deadline = time.monotonic() + 10
        name = "modelplane_payload_log_events_dropped_total"
        while metric(gateway, name, **dropped) < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert metric(gateway, name, **dropped) == 6


def test_s3_objects_as_parquet_with_kserve_s_columns(replica, s3):  # noqa: F811
    parquet = pytest.importorskip("pyarrow.parquet")
    server, client = s3
    log = spec("s3://logs/columns", blob=s3_target(server, format="parquet", batch_size=2))
    with gateway_for(replica, log) as (_, http):
        predict(http, [[5]], **{"x-request-id": "p-1"})
        stored = wait_for(lambda: objects(client, "columns/"), 1)
    (key,) = stored
    assert key == "columns/default/status/predictor/p-1-request.parquet"
    table = parquet.read_table(io.BytesIO(stored[key]))
    assert table.schema.field("tlsSkipVerify").type == "bool"
    assert table.schema.field("statusCode").type == "int32"
    assert table.schema.field("metadata").type == "string"
    rows = table.to_pylist()
    assert [row["reqType"].rsplit(".", 1)[1] for row in rows] == ["request", "response"]
    assert [row["statusCode"] for row in rows] == [None, 200]
    assert json.loads(base64.b64decode(rows[1]["bytes"])) == {"predictions": [[5]]}
    assert rows[0]["id"] == rows[1]["id"] == "p-1" and rows[0]["endpoint"] == ""


def test_gcs_objects_as_csv(replica):  # noqa: F811
    server = start_gcs_emulator()
    try:
        client = gcs.Client(
            credentials=AnonymousCredentials(), project="test", client_options={"api_endpoint": server.url}
        )
        client.create_bucket("gcs-logs")
        target = BlobLogTarget(format="csv", batch_size=2, config=(("endpoint_url", server.url),))
        with gateway_for(replica, spec("gs://gcs-logs", blob=target)) as (_, http):
            predict(http, [[7]], **{"x-request-id": "g-1"})
            blobs = wait_for(lambda: list(client.list_blobs("gcs-logs")), 1)
        (blob,) = blobs
        assert blob.name == "default/status/predictor/g-1-request.csv"
        assert blob.content_type == "text/csv"
        rows = list(csv.DictReader(io.StringIO(blob.download_as_text())))
        assert [row["reqType"].rsplit(".", 1)[1] for row in rows] == ["request", "response"]
        assert json.loads(base64.b64decode(rows[1]["bytes"])) == {"predictions": [[7]]}
        assert rows[1]["statusCode"] == "200" and rows[0]["statusCode"] == ""
    finally:
        server.stop()


def test_azure_blobs_through_a_marshaller(replica, tmp_path):  # noqa: F811
    server = start_azurite(tmp_path)
    marshaller = Marshaller()
    try:
        endpoint = f"{server.url}/{AZURITE_ACCOUNT}"
        service = BlobServiceClient(
            endpoint, credential={"account_name": AZURITE_ACCOUNT, "account_key": AZURITE_KEY}
        )
        container = service.create_container("azlogs")
        target = BlobLogTarget(
            marshaller_url=marshaller.url,
            config=(("account_key", AZURITE_KEY), ("endpoint_url", endpoint)),
        )
        url = f"abfs://azlogs@{AZURITE_ACCOUNT}.dfs.core.windows.net/events"
        with gateway_for(replica, spec(url, blob=target)) as (_, http):
            predict(http, [[3]], **{"x-request-id": "a-1"})
            names = wait_for(lambda: [blob.name for blob in container.list_blobs()], 2)
        assert sorted(names) == [
            "events/default/status/predictor/a-1-request.txt",
            "events/default/status/predictor/a-1-response.txt",
        ]
        body = container.download_blob("events/default/status/predictor/a-1-response.txt").readall()
        assert body == b"1 record(s): a-1 response"
        assert all(len(batch) == 1 for batch in marshaller.batches)  # the batch, as a JSON list
    finally:
        marshaller.stop()
        server.stop()


class Marshaller:
    """KServe's marshaller protocol: a batch of records as a JSON list in, the object's bytes out, its
    extension in X-Log-Marshal-Extension."""

    def __init__(self) -> None:
        import asyncio
        import socket
        import threading

        self.batches: list[list[dict]] = []
        self._loop = asyncio.new_event_loop()
        self._shutdown = http_server.Shutdown(1)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/marshal"

        async def handle(request: http_server.HttpRequest) -> http_server.HttpResponse:
            batch = orjson.loads(request.body)
            self.batches.append(batch)
            kinds = " ".join(f"{record['id']} {record['reqType'].rsplit('.', 1)[1]}" for record in batch)
            body = f"{len(batch)} record(s): {kinds}".encode()
            return http_server.HttpResponse(200, body, b"text/plain", [(b"x-log-marshal-extension", b"txt")])

        limits = http_server.ServerLimits(None, 30)
        serving = http_server.serve(handle, sock, limits, self._shutdown)
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(serving,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._shutdown.request)
        self._thread.join(10)


def test_an_id_cannot_make_folders_in_the_bucket(replica, s3):  # noqa: F811
    server, client = s3
    log = spec("s3://logs/ids", blob=s3_target(server))
    with gateway_for(replica, log) as (_, http):
        predict(http, [[1]], **{"x-request-id": "../../elsewhere/x y"})
    stored = wait_for(lambda: objects(client, "ids/"), 2)
    assert sorted(stored) == [
        "ids/default/status/predictor/.._.._elsewhere_x_y-request.json",
        "ids/default/status/predictor/.._.._elsewhere_x_y-response.json",
    ]
    assert json.loads(next(iter(stored.values())))["id"] == "../../elsewhere/x y"
