"""TF Serving's REST answers about a model, for the tensorflow runtime: its status
(`GET /v1/models/{m}`) and its metadata (`GET /v1/models/{m}/metadata`), the SignatureDefs of the
SavedModel as TF Serving prints them (protobuf's JSON, with its field names and every field)."""

from __future__ import annotations

from pathlib import Path

PREDICT_METHOD = "tensorflow/serving/predict"


def signature_defs(saved_model_folder: Path) -> dict:
    """The SignatureDefs of the SavedModel's first MetaGraph (the one served), by name, as JSON."""
    from google.protobuf import json_format, text_format
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    binary = saved_model_folder / "saved_model.pb"
    if binary.is_file():
        saved_model.ParseFromString(binary.read_bytes())
    else:
        text_format.Parse((saved_model_folder / "saved_model.pbtxt").read_text(), saved_model)
    if not saved_model.meta_graphs:
        return {}
    document = json_format.MessageToDict(
        saved_model.meta_graphs[0],
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )
    return document.get("signature_def", {})


def model_metadata(name: str, version: str | None, signatures: dict) -> dict:
    """TF Serving's GetModelMetadata answer in JSON."""
    spec = {"name": name, "signature_name": ""}
    if version is not None:
        spec["version"] = version
    return {"model_spec": spec, "metadata": {"signature_def": {"signature_def": signatures}}}


def model_status(version: str | None) -> dict:
    """TF Serving's GetModelStatus answer in JSON, for a model that is serving."""
    status = {"state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    if version is not None:
        status = {"version": version, **status}
    return {"model_version_status": [status]}


def signature_def_text(signatures: dict, name: str) -> str:
    """A SignatureDef in protobuf's text format, as TF Serving prints one in its errors."""
    from google.protobuf import json_format, text_format
    from tensorflow.core.protobuf import meta_graph_pb2

    signature = json_format.ParseDict(signatures.get(name, {}), meta_graph_pb2.SignatureDef())
    return text_format.MessageToString(signature)
