"""Condition types and reasons of serving.kserve.io status, by their exact names."""

from __future__ import annotations

# InferenceService conditions. Ready is computed from PredictorReady and IngressReady.
READY = "Ready"
PREDICTOR_READY = "PredictorReady"
TRANSFORMER_READY = "TransformerReady"
EXPLAINER_READY = "ExplainerReady"
INGRESS_READY = "IngressReady"
PREDICTOR_ROUTE_READY = "PredictorRouteReady"
TRANSFORMER_ROUTE_READY = "TransformerRouteReady"
EXPLAINER_ROUTES_READY = "ExplainerRoutesReady"
PREDICTOR_CONFIGURATION_READY = "PredictorConfigurationReady"
TRANSFORMER_CONFIGURATION_READY = "TransformerConfigurationReady"
EXPLAINER_CONFIGURATION_READY = "ExplainerConfigurationReady"
ROUTES_READY = "RoutesReady"
LATEST_DEPLOYMENT_READY = "LatestDeploymentReady"
CANARY_PREDICTOR_READY = "CanaryPredictorReady"
STOPPED = "Stopped"
# modelplane's own: False (a warning) when the spec sets fields the platform cannot act on.
FIELDS_HONORED = "FieldsHonored"

# Reasons of a component that cannot run as asked: Kubernetes' for a pod no node can take, and
# modelplane's for fields one machine cannot honor.
UNSCHEDULABLE = "Unschedulable"
NOT_HONORED_ON_ONE_MACHINE = "NotHonoredOnOneMachine"

# CanaryPredictorReady reasons.
ALL_CANARIES_READY = "AllCanariesReady"
CANARIES_NOT_READY = "CanariesNotReady"
STOPPED_REASON = "Stopped"

# modelStatus.transitionStatus values.
UP_TO_DATE = "UpToDate"
IN_PROGRESS = "InProgress"
BLOCKED_BY_FAILED_LOAD = "BlockedByFailedLoad"
INVALID_SPEC = "InvalidSpec"

# modelStatus.states values.
PENDING = "Pending"
STANDBY = "Standby"
LOADING = "Loading"
LOADED = "Loaded"
FAILED_TO_LOAD = "FailedToLoad"

# modelStatus.lastFailureInfo.reason values.
MODEL_LOAD_FAILED = "ModelLoadFailed"
RUNTIME_UNHEALTHY = "RuntimeUnhealthy"
RUNTIME_DISABLED = "RuntimeDisabled"
NO_SUPPORTING_RUNTIME = "NoSupportingRuntime"
RUNTIME_NOT_RECOGNIZED = "RuntimeNotRecognized"
INVALID_PREDICTOR_SPEC = "InvalidPredictorSpec"

# TrainedModel conditions and their failure reasons.
INFERENCE_SERVICE_READY = "InferenceServiceReady"
IS_MMS_PREDICTOR = "IsMMSPredictor"
MEMORY_RESOURCE_AVAILABLE = "MemoryResourceAvailable"
INFERENCE_SERVICE_NOT_READY = "InferenceServiceNotReady"
IS_NOT_MMS_PREDICTOR = "IsNotMMSPredictor"
MEMORY_RESOURCE_NOT_AVAILABLE = "MemoryResourceNotAvailable"
