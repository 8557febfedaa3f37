"""Grafana dashboards for the operations centre, generated from Python and committed as JSON
(``dashboards/grafana/dashboards``); ``misto-cloud dashboards build|check|push``. Only
:mod:`misto.cloud.dashboards.push` talks to Grafana (through grafana-client). See docs/dashboards.md."""

from misto.cloud.dashboards.generate import DEFAULT_DIR, dashboards, differences, rendered, write
from misto.cloud.dashboards.model import DATASOURCE_UID, Dashboard, render

__all__ = ["DATASOURCE_UID", "DEFAULT_DIR", "Dashboard", "dashboards", "differences", "render", "rendered", "write"]
