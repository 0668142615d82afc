"""`PredictorConfig`: where a transformer's predictor listens and how to speak to it, as KServe's
`ModelServer(predictor_config=...)` takes it."""

from __future__ import annotations

from dataclasses import dataclass

from modelplane.server.model import DEFAULT_PREDICTOR_TIMEOUT_SECONDS, Model

PREDICTOR_PROTOCOLS = ("v1", "v2", "grpc-v2")


@dataclass(frozen=True)
class PredictorConfig:
    predictor_host: str
    predictor_protocol: str = "v1"
    predictor_use_ssl: bool = False
    predictor_request_timeout_seconds: float = DEFAULT_PREDICTOR_TIMEOUT_SECONDS
    predictor_request_retries: int = 0
    predictor_health_check: bool = False

    @property
    def predictor_base_url(self) -> str:
        return f"{'https' if self.predictor_use_ssl else 'http'}://{self.predictor_host}"

    def apply_to(self, model: Model) -> None:
        """Makes `model` a transformer of this predictor, unless it names a predictor itself; its calls
        take this config's timeout and retries either way, as in KServe."""
        model.predictor_request_timeout_seconds = self.predictor_request_timeout_seconds
        model.predictor_request_retries = self.predictor_request_retries
        if model.predictor_host:
            return
        model.predictor_host = self.predictor_base_url if self.predictor_use_ssl else self.predictor_host
        model.predictor_protocol = self.predictor_protocol
        model.predictor_health_check = self.predictor_health_check


def check_predictor_protocol(model: Model) -> None:
    """A transformer's predictor protocol must be one modelplane's client speaks."""
    if model.predictor_host and model.predictor_protocol not in PREDICTOR_PROTOCOLS:
        raise ValueError(
            f"model {model.name}: predictor protocol {model.predictor_protocol!r} is not served by "
            f"modelplane's transformer: use one of {', '.join(PREDICTOR_PROTOCOLS)}"
        )
