"""Domain errors: what a rule refuses, said in the domain's words. Domain modules raise them; the
HTTP edge (`shared.http.problem_middleware`) turns each into its problem+json answer, so no rule
needs to know about HTTP."""
from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refusal with the HTTP status and title it maps to; `extra` fields join the problem document."""

    status = 400
    title = "Invalid request"

    def __init__(self, detail: str, *, title: str | None = None, errors: list[dict[str, Any]] | None = None,
                 **extra: Any) -> None:
        super().__init__(detail)
        self.detail, self.errors, self.extra = detail, errors, extra
        self.title = title or type(self).title


class NotFound(DomainError):
    status, title = 404, "Not found"


class Conflict(DomainError):
    """The request conflicts with the current state of what it names (nothing was changed)."""

    status, title = 409, "Conflict"


class InvalidCursor(DomainError):
    title = "Invalid cursor"

    def __init__(self) -> None:
        super().__init__("the cursor is not one this API issued", errors=[{"loc": ["query", "cursor"], "msg": "invalid cursor"}])
