"""modelplane on Kubernetes: the objects KServe's controller makes for each resource, made from the
same defaulting, validation, runtime selection and revision logic as `modelplane up`.

    rendering = render(admitted_resources, KubeSettings())         # render.py: objects and warnings
    objects = isvc_objects(isvc, namespaced_runtimes, cluster_runtimes, settings, ready_canaries=...)

Modules, from the resource down: `render` (per kind, and the deployment mode), `standard` and `knative`
(the two modes), `graphs` (InferenceGraph routers), `trained_models` (the model ConfigMap), `pods` (each
component's pod), `storage_initializer`, `workloads` (Deployment, Service), `autoscalers` (HPA, KEDA),
`routes` (HTTPRoute, Ingress), `meta` (names, labels, owner references, finalizers), `images`,
`notes` (what is not acted on), `runtimes` (the built-in ClusterServingRuntimes for `deploy/`) and
`settings`. docs/kubernetes.md describes what they make.
"""
