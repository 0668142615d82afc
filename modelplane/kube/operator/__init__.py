"""The operator: reconciles serving.kserve.io resources on a cluster into the objects `modelplane.kube`
renders, and writes their status from what the cluster reports (`modelplane operator`).

Built on lightkube's async client (watches, server-side apply, generic resources); docs/kubernetes.md
says why. Modules:

- `resources`: every kind it reads or writes, as lightkube generic resources (plain dicts);
- `cluster`: the calls it makes (get, list, apply, delete, status, events);
- `work_queue`: keys to reconcile, one at a time per key, retried with back-off;
- `watches`: lightkube watches that turn changes into keys;
- `leader`: leader election by a coordination.k8s.io Lease;
- `observed`, `isvc_status`: from Deployments, Pods and Knative Services to an InferenceService's status;
- `services`, `graphs`, `trained_models`: the reconcilers of each kind;
- `webhook`: the validating admission webhook;
- `settings`, `runner`: what an installation decides, and the process that runs it all.
"""
