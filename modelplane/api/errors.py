"""The errors a resource can earn: a YAML problem, or a rule it breaks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One broken rule: where (a dotted path such as `spec.predictor.model.storageUri`) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ValidationError(ValueError):
    """A resource that must be rejected; `errors` lists every rule it breaks."""

    def __init__(self, errors: list[FieldError]) -> None:
        if not errors:
            raise ValueError("a ValidationError needs at least one FieldError")
        self.errors = list(errors)
        super().__init__("; ".join(str(e) for e in self.errors))

    def to_dict(self) -> dict:
        """The body of a 4xx answer: `{"error": ..., "details": [{"field", "message"}...]}`."""
        return {
            "error": str(self),
            "details": [{"field": e.path, "message": e.message} for e in self.errors],
        }


class LoadError(ValueError):
    """A document that cannot be read; the message starts with `file:line:` when they are known."""

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None) -> None:
        self.source = source
        self.line = line
        self.reason = message
        where = source or "<input>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {message}")
