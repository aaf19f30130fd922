"""The datasources every panel may use: fixed UIDs that the Grafana role's provisioning file must declare.

The UIDs are the contract between the generated dashboards and `provisioning/datasources/*.yaml`: a
dashboard refers to a datasource by UID only, so provisioning them with exactly these UIDs is what makes a
freshly deployed Grafana show data without anyone clicking "select datasource".
"""

from __future__ import annotations

from dataclasses import dataclass

from grafana_foundation_sdk.models.dashboard import DataSourceRef


@dataclass(frozen=True)
class Datasource:
    uid: str
    # Grafana's plugin id of the datasource type.
    type: str

    def ref(self) -> DataSourceRef:
        return DataSourceRef(type_val=self.type, uid=self.uid)


# InfluxDB through InfluxQL (jsonData.version: InfluxQL, one DBRP mapping per bucket): see docs/dashboards.md
# for why InfluxQL and not Flux.
INFLUXDB = Datasource(uid="influxdb", type="influxdb")
# `grafana-postgresql-datasource` is the plugin id since Grafana 10.2.3 (`postgres` is only an alias).
POSTGRES = Datasource(uid="postgres", type="grafana-postgresql-datasource")
PROMETHEUS = Datasource(uid="prometheus", type="prometheus")

PROVISIONED: tuple[Datasource, ...] = (INFLUXDB, POSTGRES, PROMETHEUS)

# A panel whose targets each name their own datasource (Portfolio joins PostgreSQL positions with prices).
MIXED = Datasource(uid="-- Mixed --", type="datasource")
