"""Which requests are traced: the sampler `OTEL_TRACES_SAMPLER` (and `OTEL_TRACES_SAMPLER_ARG`) names.

The decision is made once, where a request enters a process, and its spans follow it. The samplers of the
OpenTelemetry specification are decided here, as the SDK decides them: `always_on`, `always_off`,
`traceidratio` (a trace id's lower 64 bits below the ratio's share of them) and their `parentbased_`
forms (the default, `parentbased_always_on`), which follow the caller's sampled flag when there is a
caller. Any other sampler (one a package provides) is the SDK's, asked at each entry.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

logger = logging.getLogger("modelplane.tracing")

_ROOTS = ("always_on", "always_off", "traceidratio")
_LOWER_64 = slice(8, 16)


class Sampler:
    """Decides whether a request entering the process is traced."""

    def __init__(self, root: str, ratio: float, parent_based: bool, sdk_sampler: Any = None) -> None:
        self.parent_based = parent_based
        self._root = root
        self._bound = round(ratio * (1 << 64))
        self._sdk = sdk_sampler

    def follows(self, parent_sampled: bool) -> bool | None:
        """The decision for a request whose caller decided `parent_sampled`, when following the caller is
        all there is to it (a parent-based sampler); None when the trace id must be looked at."""
        if self.parent_based and self._sdk is None:
            return parent_sampled
        return None

    def sampled(self, trace_id: bytes, parent_sampled: bool | None, parent_span_id: bytes = b"") -> bool:
        """Whether to trace a request of trace `trace_id`; `parent_sampled` is the caller's flag, None
        when the trace begins here."""
        if self._sdk is not None:
            return self._ask_sdk(trace_id, parent_sampled, parent_span_id)
        if parent_sampled is not None and self.parent_based:
            return parent_sampled
        if self._root == "always_on":
            return True
        if self._root == "always_off":
            return False
        return int.from_bytes(trace_id[_LOWER_64], "big") < self._bound

    def _ask_sdk(self, trace_id: bytes, parent_sampled: bool | None, parent_span_id: bytes) -> bool:
        from opentelemetry import trace
        from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

        context = None
        if parent_sampled is not None:
            parent = SpanContext(
                int.from_bytes(trace_id, "big"),
                int.from_bytes(parent_span_id, "big"),
                is_remote=True,
                trace_flags=TraceFlags(1 if parent_sampled else 0),
            )
            context = trace.set_span_in_context(NonRecordingSpan(parent))
        result = self._sdk.should_sample(context, int.from_bytes(trace_id, "big"), "request")
        return result.decision.is_sampled()


def sampler_from(environ: Mapping[str, str], sdk_sampler: Any = None) -> Sampler:
    """The sampler the OTEL_* variables name; `sdk_sampler` (the SDK's, from the same variables) decides
    for one modelplane does not know."""
    name = environ.get("OTEL_TRACES_SAMPLER", "parentbased_always_on").strip().lower()
    parent_based = name.startswith("parentbased_")
    root = name.removeprefix("parentbased_")
    if root not in _ROOTS:
        return Sampler("always_on", 1.0, True, sdk_sampler)
    return Sampler(
        root, _ratio(environ.get("OTEL_TRACES_SAMPLER_ARG")) if root == "traceidratio" else 1.0, parent_based
    )


def _ratio(arg: str | None) -> float:
    if arg is None:
        return 1.0
    try:
        ratio = float(arg)
    except ValueError:
        logger.warning("OTEL_TRACES_SAMPLER_ARG=%r is not a number: sampling every trace", arg)
        return 1.0
    if not 0.0 <= ratio <= 1.0:
        logger.warning("OTEL_TRACES_SAMPLER_ARG=%r is not between 0 and 1: sampling every trace", arg)
        return 1.0
    return ratio
