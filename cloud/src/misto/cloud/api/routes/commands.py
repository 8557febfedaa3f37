"""``/api/v1/gateways/{gateway}/commands``: send a command to a gateway (``misto/v1/<gateway>/cmd``)
and follow its answer: operators and admins send, technicians also read (the control database does
not yet record who sent a command, so sending stays with the operations centre)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Response, status

from misto.cloud.api import models
from misto.cloud.api.access import allow
from misto.cloud.api.control_errors import control_errors
from misto.cloud.api.deps import ControlDep, GatewayDep
from misto.cloud.api.routes.gateway_config import AUTH_RESPONSES, READERS, SENDERS, public_ack
from misto.cloud.control import CommandRecord, RemoteControl

router = APIRouter(prefix="/api/v1/gateways", tags=["remote control"])


@router.post(
    "/{gateway}/commands",
    response_model=models.CommandOut,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send a command (write, poll_now, restart_driver); the gateway answers with an ack",
    dependencies=[allow(*SENDERS)],
    responses={
        **AUTH_RESPONSES,
        502: {"description": "The broker refused the message"},
        503: {"description": "No broker link (or no PUBACK in time): try again"},
    },
)
async def post_command(
    gateway: GatewayDep, body: models.CommandIn, control: ControlDep, response: Response
) -> models.CommandOut:
    with control_errors():
        command = await control.send_command(gateway, body.action, body.args)
    response.headers["Location"] = f"{router.prefix}/{gateway}/commands/{command.id}"
    return _public(command, control)


@router.get(
    "/{gateway}/commands",
    response_model=list[models.CommandOut],
    summary="The gateway's commands with their answers, newest first",
    dependencies=[allow(*READERS)],
    responses=AUTH_RESPONSES,
)
async def list_commands(
    gateway: GatewayDep, control: ControlDep, limit: Annotated[int, Query(ge=1, le=1000)] = 50
) -> list[models.CommandOut]:
    with control_errors():
        commands = await control.commands(gateway, limit)
    return [_public(command, control) for command in commands]


@router.get(
    "/{gateway}/commands/{command_id}",
    response_model=models.CommandOut,
    summary="One command and its answer",
    dependencies=[allow(*READERS)],
    responses={**AUTH_RESPONSES, 404: {"description": "No such command for this gateway"}},
)
async def get_command(
    gateway: GatewayDep, command_id: Annotated[str, Path(max_length=64)], control: ControlDep
) -> models.CommandOut:
    with control_errors():
        command = await control.command(gateway, command_id)
    if command is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no command {command_id!r} for gateway {gateway!r}")
    return _public(command, control)


def _public(command: CommandRecord, control: RemoteControl) -> models.CommandOut:
    return models.CommandOut(
        id=command.id,
        gateway=command.gateway,
        action=command.action,
        args=dict(command.args),
        issued_at=command.issued_at,
        expires_at=command.expires_at,
        published_at=command.published_at,
        publish_error=command.publish_error,
        state=command.state(control.now()).value,
        ack=public_ack(command.ack),
    )
