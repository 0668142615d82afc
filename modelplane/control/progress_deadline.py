"""How long a new revision may take to get ready before it counts as failed.

Knative fails a revision whose initial scale is never achieved within its progress deadline (600 s, or
the revision's `serving.knative.dev/progress-deadline` annotation, which KServe copies from the
InferenceService), as a Deployment fails one that makes no progress within `progressDeadlineSeconds`.
A revision template carries `progressDeadline` (seconds) only when the annotation sets it, so that
templates without it stay as they were.
"""

from __future__ import annotations

from modelplane.control.autoscaling_settings import parse_duration

PROGRESS_DEADLINE_ANNOTATION = "serving.knative.dev/progress-deadline"
DEFAULT_PROGRESS_DEADLINE = 600.0


class ProgressDeadlineError(ValueError):
    """An annotation that is not a positive duration; the message says so."""


def annotated_progress_deadline(annotations: dict) -> float | None:
    """The annotation's deadline in seconds, None without one; raises ProgressDeadlineError."""
    value = annotations.get(PROGRESS_DEADLINE_ANNOTATION)
    if value is None:
        return None
    seconds = parse_duration(str(value))
    if seconds is None or seconds <= 0:
        raise ProgressDeadlineError(
            f"{PROGRESS_DEADLINE_ANNOTATION} must be a positive duration such as 10m or 90s, not {value!r}"
        )
    return seconds


def progress_deadline(template: dict, default: float = DEFAULT_PROGRESS_DEADLINE) -> float:
    """A revision's deadline: its template's, else the platform's."""
    return float(template.get("progressDeadline") or default)
