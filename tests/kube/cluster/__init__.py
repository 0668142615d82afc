"""A Kubernetes API server for tests: the semantics the operator relies on, over real HTTP.

It keeps objects of any group, version and kind it is told of (`kinds.py`), in memory, with the
metadata the API server manages (uid, resourceVersion, generation, creationTimestamp, managedFields),
and serves them at Kubernetes' paths:

- list (label selectors), get, create (409 AlreadyExists), update (409 Conflict on a stale
  resourceVersion), merge patch, server-side apply (field managers, conflicts, `force`), delete;
- the status subresource (spec writes keep the status, status writes keep the rest; `generation`
  moves with the spec only);
- watch, as newline-delimited events, from now (with the current objects first) or resumed from a
  resourceVersion still in its history (else `410 Gone`);
- finalizers (a delete marks `deletionTimestamp`; the object goes when its finalizers do) and the
  garbage collector (dependents of a deleted owner, by `ownerReferences` uid, go too);
- ValidatingWebhookConfigurations: a create or update that a registered webhook's rules match is
  sent to it as an AdmissionReview (its `clientConfig.url`, TLS checked against its `caBundle`),
  and refused with `admission webhook "<name>" denied the request: <its message>`.

It runs no controllers: no pods are started, and Deployments, Pods, Knative Services and HTTPRoutes
get the status a test writes, as kubelet and the controllers would.

    python -m tests.kube.cluster --port 0      # prints `listening on http://127.0.0.1:PORT`
"""
