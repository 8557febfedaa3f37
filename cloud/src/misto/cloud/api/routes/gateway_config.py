"""``/api/v1/gateways/{gateway}/config``: the gateway's desired configuration, versioned and
retained on ``misto/v1/<gateway>/config``, and what the gateway answered: operators and admins
publish, technicians also read."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from misto.cloud.api import models
from misto.cloud.api.access import allow
from misto.cloud.api.control_errors import control_errors
from misto.cloud.api.deps import ControlDep, GatewayDep
from misto.cloud.auth.roles import Role
from misto.cloud.control import AckRecord, ConfigStatus

router = APIRouter(prefix="/api/v1/gateways", tags=["remote control"])
#: Who may publish configurations and send commands.
SENDERS = (Role.ADMIN, Role.OPERATOR)
#: Who may read them and the gateways' answers.
READERS = (Role.ADMIN, Role.OPERATOR, Role.TECHNICIAN)

AUTH_RESPONSES: dict[int | str, dict[str, str]] = {
    401: {"description": "No credentials"},
    403: {"description": "Credentials refused, or a role not admitted"},
    422: {"description": "Invalid gateway id or body; `loc` names the field"},
}


@router.put(
    "/{gateway}/config",
    response_model=models.GatewayConfig,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Publish a new configuration version (retained); the gateway answers with an ack",
    dependencies=[allow(*SENDERS)],
    responses={
        **AUTH_RESPONSES,
        409: {"description": "version is not greater than every version issued"},
        502: {"description": "The broker refused the message"},
        503: {"description": "No broker link (or no PUBACK in time): try again"},
    },
)
async def put_config(gateway: GatewayDep, body: models.ConfigIn, control: ControlDep) -> models.GatewayConfig:
    with control_errors():
        config_status = await control.set_config(gateway, body.config, version=body.version)
    return _public(config_status)


@router.get(
    "/{gateway}/config",
    response_model=models.GatewayConfig,
    summary="The desired configuration and the gateway's answers",
    dependencies=[allow(*READERS)],
    responses={**AUTH_RESPONSES, 404: {"description": "No configuration was published to the gateway"}},
)
async def get_config(gateway: GatewayDep, control: ControlDep) -> models.GatewayConfig:
    with control_errors():
        config_status = await control.config_status(gateway)
    if config_status.desired is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no configuration has been published to gateway {gateway!r}")
    return _public(config_status)


def public_ack(ack: AckRecord | None) -> models.AckOut | None:
    if ack is None:
        return None
    return models.AckOut(result=ack.result.value, detail=ack.detail, at=ack.at, received_at=ack.received_at)


def _public(config_status: ConfigStatus) -> models.GatewayConfig:
    desired = config_status.desired
    assert desired is not None, "no published configuration"
    assert desired.published_at is not None, "desired means published"
    ack = desired.ack
    last = config_status.last_acked
    last_ack = None
    if last is not None and last.ack is not None:
        last_ack = models.VersionAck(
            version=last.version,
            result=last.ack.result.value,
            detail=last.ack.detail,
            at=last.ack.at,
            received_at=last.ack.received_at,
        )
    return models.GatewayConfig(
        gateway=desired.gateway,
        version=desired.version,
        config=dict(desired.config),
        issued_at=desired.issued_at,
        published_at=desired.published_at,
        state="pending" if ack is None else "applied" if ack.result.value == "ok" else "failed",
        ack=public_ack(ack),
        applied_version=config_status.applied_version,
        last_ack=last_ack,
        next_version=config_status.next_version,
    )
