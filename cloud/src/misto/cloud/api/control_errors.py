"""How the errors of remote configuration and commands become HTTP answers.

- :class:`ControlInputError` → 422 in FastAPI's format, each problem located in the body
  (``{"loc": ["body", "config", "broker"], ...}``);
- :class:`VersionConflictError` → 409;
- :class:`BrokerUnavailableError` (no broker link, lost, no PUBACK in time) → 503 with Retry-After;
- :class:`PublishRefusedError` (the broker said no, e.g. its ACL) → 502;
- :class:`StoreError` of the control database → 503.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import HTTPException, status
from fastapi.exceptions import RequestValidationError

from misto.cloud.errors import (
    BrokerUnavailableError,
    ControlInputError,
    PublishRefusedError,
    StoreError,
    VersionConflictError,
)

RETRY_AFTER_S = 5


@contextmanager
def control_errors() -> Iterator[None]:
    try:
        yield
    except ControlInputError as exc:
        raise RequestValidationError(
            [
                {"type": "value_error", "loc": ("body", *problem.field), "msg": problem.message, "input": problem.value}
                for problem in exc.problems
            ]
        ) from None
    except VersionConflictError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except BrokerUnavailableError as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"broker link down: {exc}",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        ) from None
    except PublishRefusedError as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, str(exc)) from None
    except StoreError as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, str(exc), headers={"Retry-After": str(RETRY_AFTER_S)}
        ) from None
