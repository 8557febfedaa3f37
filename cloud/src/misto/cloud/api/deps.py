"""Dependencies of the routes, as ``Annotated`` aliases: ``store: StoreDep``. Who may call an
endpoint is declared with :mod:`misto.cloud.api.access`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.exceptions import RequestValidationError

from misto.cloud.api.state import ApiState
from misto.cloud.control import RemoteControl
from misto.cloud.storage.base import Store
from misto.protocol import topics


def get_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.misto
    return state


StateDep = Annotated[ApiState, Depends(get_state)]


def get_store(state: StateDep) -> Store:
    if state.store is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the store is not open")
    return state.store


StoreDep = Annotated[Store, Depends(get_store)]


def get_control(state: StateDep) -> RemoteControl:
    if state.control is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the control database is not open")
    return state.control


ControlDep = Annotated[RemoteControl, Depends(get_control)]


def gateway_id(
    gateway: Annotated[str, Path(description="Gateway id (a-z, 0-9, '-', '_')", examples=["gw-kherson-001"])],
) -> str:
    """The ``{gateway}`` path parameter, checked like the topic scheme checks it (422 naming it)."""
    try:
        return topics.check_gateway_id(gateway)
    except ValueError as exc:
        error = {"type": "value_error", "loc": ("path", "gateway"), "msg": str(exc), "input": gateway}
        raise RequestValidationError([error]) from None


GatewayDep = Annotated[str, Depends(gateway_id)]
