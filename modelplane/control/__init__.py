"""Pure reconcile logic shared by both platforms: from resources to revisions, routes and status.

templates = revision_templates(isvc, namespaced_runtimes, cluster_runtimes)   # per component
latest, created = latest_revisions(name, known_revisions, templates)
status = inference_service_status(isvc, observed_state, domain=..., port=..., now=...)
"""

from .observed import ComponentState, Failure, RevisionState, ServiceState, Termination
from .revision_templates import COMPONENTS, revision_templates
from .revisions import Revision, latest_revisions, revision_name, template_digest
from .status import inference_service_status, not_serving_reason, stopped_status
from .traffic import TrafficTarget, rolled_out_after, traffic_targets
from .urls import component_host, entry_component, host_url, service_host, service_routes

__all__ = [
    "COMPONENTS",
    "ComponentState",
    "Failure",
    "Revision",
    "RevisionState",
    "ServiceState",
    "Termination",
    "TrafficTarget",
    "component_host",
    "entry_component",
    "host_url",
    "inference_service_status",
    "latest_revisions",
    "revision_name",
    "revision_templates",
    "rolled_out_after",
    "service_host",
    "service_routes",
    "not_serving_reason",
    "stopped_status",
    "template_digest",
    "traffic_targets",
]
