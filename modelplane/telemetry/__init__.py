"""Seeing inside modelplane: payload logging (CloudEvents of each request and response), tracing
(OpenTelemetry spans across the gateway, transformers, predictors and graph routers) and the
Prometheus exposition the platform's processes share.

Nothing here knows the platform: the gateway, the model server and the router call in.
"""
