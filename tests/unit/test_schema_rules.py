"""The request schemas apply the input rules: each bad value is refused naming its field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from fleetwave.devices.schemas import DeviceCreate, TargetStateWrite
from fleetwave.policies.schemas import PolicyCreate
from fleetwave.provisioning.schemas import DeviceRegistration, ProvisioningKeyCreate
from fleetwave.rollouts.schemas import ControlRequest, HealthReport, TriggerUpdate

POLICY = {"image_pattern": "iotistic/myapp:*"}
DEVICE = {"device_name": "pi-1"}
KEY = {"fleet_id": "north"}


@pytest.mark.parametrize(
    ("model", "body", "location"),
    [
        (DeviceCreate, DEVICE | {"device_name": "pi\x00"}, ("device_name",)),
        (DeviceCreate, DEVICE | {"device_type": "\ud800"}, ("device_type",)),
        (DeviceCreate, DEVICE | {"fleet_id": "a\tb"}, ("fleet_id",)),
        (DeviceCreate, DEVICE | {"tags": {"site": "a\x00"}}, ("tags", "site")),
        (DeviceCreate, DEVICE | {"apps": {"1": {"k\x00": 1}}}, ("apps",)),
        (TargetStateWrite, {"apps": {}, "config": {"v": ["\ud800"]}}, ("config",)),
        (PolicyCreate, POLICY | {"image_pattern": "a/b:\x00*"}, ("image_pattern",)),
        (PolicyCreate, POLICY | {"description": "a\x1bb"}, ("description",)),
        (
            PolicyCreate,
            POLICY | {"health_check_config": [{"url": "\x00"}]},
            ("health_check_config",),
        ),
        (PolicyCreate, POLICY | {"exclude_tags": ["\x00"]}, ("exclude_tags", 0)),
        (PolicyCreate, POLICY | {"device_tags": ["site:\x00"]}, ("device_tags", "site")),
        (
            PolicyCreate,
            POLICY | {"failure_rate_min_devices": 10**18},
            ("failure_rate_min_devices",),
        ),
        (PolicyCreate, POLICY | {"staged_batches": 101}, ("staged_batches",)),
        (PolicyCreate, POLICY | {"batch_percentages": [1.0] * 101}, ("batch_percentages",)),
        (PolicyCreate, POLICY | {"batch_percentages": [0, 100]}, ("batch_percentages", 0)),
        (ProvisioningKeyCreate, KEY | {"max_uses": 10**7}, ("max_uses",)),
        (ProvisioningKeyCreate, KEY | {"expires_at": "9999-12-31T23:59:59-23:59"}, ("expires_at",)),
        (ProvisioningKeyCreate, KEY | {"description": "\x00"}, ("description",)),
        (TriggerUpdate, {"image": "a:\x00"}, ("image",)),
        (
            TriggerUpdate,
            {"image": "a:v1", "filters": {"fleet_id": "\x00"}},
            ("filters", "fleet_id"),
        ),
        (ControlRequest, {"note": "\ud800"}, ("note",)),
        (HealthReport, {"results": [{"check": "a\x00", "passed": True}]}, ("results", 0, "check")),
        (
            HealthReport,
            {"rollout_id": "\x00", "results": [{"check": "a", "passed": True}]},
            ("rollout_id",),
        ),
        (DeviceRegistration, {"uuid": "pi-1", "osVersion": "\x00"}, ("osVersion",)),
        (DeviceRegistration, {"uuid": "pi-1", "applicationId": 2**63}, ("applicationId",)),
    ],
)
def test_bad_value_is_refused_at_its_field(
    model: type[BaseModel], body: dict[str, Any], location: tuple[Any, ...]
) -> None:
    with pytest.raises(ValidationError) as refused:
        model.model_validate(body)
    assert {error["loc"][: len(location)] for error in refused.value.errors()} == {location}


@pytest.mark.parametrize(
    ("model", "body"),
    [
        (PolicyCreate, POLICY | {"description": "line one\nline two\ttabbed", "priority": -5}),
        (PolicyCreate, POLICY | {"batch_percentages": [i + 1 for i in range(100)]}),
        (PolicyCreate, POLICY | {"failure_rate_min_devices": 1_000_000}),
        (DeviceCreate, DEVICE | {"device_name": "Pumpe Süd 🚀", "config": {"BELL": "\x07"}}),
        (ProvisioningKeyCreate, KEY | {"expires_at": "9999-12-30T00:00:00-23:59"}),
        (DeviceRegistration, {"uuid": "pi-1", "applicationId": "app-7"}),
    ],
)
def test_good_values_at_the_edges_pass(model: type[BaseModel], body: dict[str, Any]) -> None:
    model.model_validate(body)
