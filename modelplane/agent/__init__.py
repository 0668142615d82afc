"""The model agent: the TrainedModels of a multi-model server, fetched into its model folder and loaded
through its repository API (`POST /v2/repository/models/<name>/load`, `.../unload`).

- `model_list`: KServe's `models.json`, the list of a server's models (on a cluster, the ConfigMap
  `modelconfig-<isvc>-0` mounted in the pod);
- `model_folder`: the model folder, one folder per model, with the spec each was fetched for;
- `repository`: a model server's repository API, as a client;
- `server_models`: what one server holds, made to follow what is wanted: fetch then load, unload then
  remove, a failure tried again after a back-off;
- `sidecar`: `modelplane agent`, which does it for the server next to it from the mounted `models.json`.

`modelplane up`'s TrainedModel controller (`modelplane.local.controllers.trained_models`) does it for each replica
with the same pieces.
"""
