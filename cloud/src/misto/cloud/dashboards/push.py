"""Upload the dashboards to a running Grafana through its HTTP API (grafana-client): the only
module that imports grafana-client.

Each dashboard is saved by uid with ``overwrite`` (a second push replaces, never duplicates), into
one folder found by uid and created if missing (when asked). With a :class:`DatasourceSpec` the
InfluxDB datasource the dashboards name (uid ``misto-influxdb``) is created or updated too.
Errors name the Grafana URL, the step and Grafana's answer; nothing is retried.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

from misto.cloud.dashboards.model import DATASOURCE_TYPE, DATASOURCE_UID, Dashboard, render
from misto.cloud.errors import CloudError

DATASOURCE_NAME = "Misto InfluxDB"
NOT_FOUND = 404


class DashboardPushError(CloudError):
    """Grafana refused or could not be reached during ``step``."""

    def __init__(self, url: str, step: str, reason: str) -> None:
        self.url = url
        self.step = step
        self.reason = reason
        super().__init__(f"Grafana at {url}: {step} failed: {reason}")


@dataclass(frozen=True, slots=True)
class DatasourceSpec:
    """The InfluxDB (InfluxQL) datasource as Grafana should reach it (from Grafana's side)."""

    url: str
    database: str = "misto"
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "uid": DATASOURCE_UID,
            "name": DATASOURCE_NAME,
            "type": DATASOURCE_TYPE,
            "access": "proxy",
            "url": self.url,
            "database": self.database,
            "isDefault": False,
            "jsonData": {"dbName": self.database, "httpMode": "POST", "version": "InfluxQL", "timeInterval": "10s"},
        }
        if self.user is not None:
            body["user"] = self.user
        if self.password is not None:
            body["secureJsonData"] = {"password": self.password}
        return body


@dataclass(frozen=True, slots=True)
class Credentials:
    """A service-account token, or a user and password (HTTP Basic)."""

    token: str | None = field(default=None, repr=False)
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    def for_client(self) -> str | tuple[str, str]:
        if self.token is not None:
            return self.token
        if self.user is not None and self.password is not None:
            return (self.user, self.password)
        raise ValueError("give a token, or a user and a password")


@dataclass(slots=True)
class PushReport:
    grafana_version: str = ""
    folder_created: bool = False
    datasource: str = ""  # "created", "updated" or "" (not asked)
    dashboards: list[str] = field(default_factory=list)  # "uid -> url"


def push(
    url: str,
    credentials: Credentials,
    boards: Sequence[Dashboard],
    *,
    folder_title: str = "Misto",
    folder_uid: str = "misto",
    create_folder: bool = True,
    datasource: DatasourceSpec | None = None,
    timeout_s: float = 10.0,
) -> PushReport:
    api: Any = GrafanaApi.from_url(url, credential=credentials.for_client(), timeout=timeout_s)
    report = PushReport()
    report.grafana_version = str(_call(url, "health check", api.health.check).get("version", ""))
    report.folder_created = _folder(api, url, folder_uid, folder_title, create=create_folder)
    if datasource is not None:
        report.datasource = _datasource(api, url, datasource)
    for board in boards:
        body = {
            "dashboard": render(board),
            "folderUid": folder_uid,
            "overwrite": True,
            "message": "misto-cloud dashboards push",
        }
        saved = _call(url, f"save dashboard {board.uid}", lambda body=body: api.dashboard.update_dashboard(body))
        report.dashboards.append(f"{board.uid} -> {saved.get('url', '?')}")
    return report


def _folder(api: Any, url: str, uid: str, title: str, *, create: bool) -> bool:
    try:
        api.folder.get_folder(uid)
    except GrafanaClientError as exc:
        if exc.status_code != NOT_FOUND:
            raise DashboardPushError(url, f"find folder {uid!r}", _reason(exc)) from None
        if not create:
            raise DashboardPushError(url, f"find folder {uid!r}", "no such folder (and --no-create-folder)") from None
        _call(url, f"create folder {title!r}", lambda: api.folder.create_folder(title, uid=uid))
        return True
    except (GrafanaException, OSError) as exc:
        raise DashboardPushError(url, f"find folder {uid!r}", _reason(exc)) from None
    return False


def _datasource(api: Any, url: str, spec: DatasourceSpec) -> str:
    try:
        api.datasource.get_datasource_by_uid(DATASOURCE_UID)
    except GrafanaClientError as exc:
        if exc.status_code != NOT_FOUND:
            raise DashboardPushError(url, "find the datasource", _reason(exc)) from None
        _call(url, "create the datasource", lambda: api.datasource.create_datasource(spec.as_json()))
        return "created"
    except (GrafanaException, OSError) as exc:
        raise DashboardPushError(url, "find the datasource", _reason(exc)) from None
    _call(url, "update the datasource", lambda: api.datasource.update_datasource_by_uid(DATASOURCE_UID, spec.as_json()))
    return "updated"


def _call(url: str, step: str, action: Any) -> Any:
    try:
        return action()
    except (GrafanaException, OSError) as exc:
        raise DashboardPushError(url, step, _reason(exc)) from None


def _reason(exc: Exception) -> str:
    if isinstance(exc, GrafanaException):
        return f"HTTP {exc.status_code}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"
