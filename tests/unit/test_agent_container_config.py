"""A service's configuration, as the target state writes it, becomes the engine's create options
(``create_options``) and the container's name (``container_name``)."""

from __future__ import annotations

from typing import Any

import pytest

from fleetwave.agent.container_config import container_name, create_options
from fleetwave.agent.runtime import CONFIG, DEVICE, IMAGE, MANAGED, SERVICE, ServiceSpec

DEVICE_UUID = "dev-1"


def spec(
    config: dict[str, Any] | None = None,
    *,
    service_name: str = "web",
    app_id: str = "1001",
    image: str = "iotistic/web:v1",
) -> ServiceSpec:
    return ServiceSpec(
        key=f"{app_id}/{service_name}",
        app_id=app_id,
        service_name=service_name,
        service_id=1,
        image=image,
        config=config or {},
    )


def options(config: dict[str, Any]) -> dict[str, Any]:
    return create_options(spec(config), DEVICE_UUID)


def test_ports_become_the_sdks_mapping_with_host_address_protocol_and_random_host_port() -> None:
    ports = options({"ports": ["8080:80", "127.0.0.1:53:53/udp", "9000"]})["ports"]

    assert ports == {"80/tcp": 8080, "53/udp": ("127.0.0.1", 53), "9000/tcp": None}


def test_a_service_without_ports_publishes_none() -> None:
    assert "ports" not in options({})


def test_environment_as_a_dict_becomes_name_equals_value() -> None:
    assert options({"environment": {"MODE": "edge", "WORKERS": 4}})["environment"] == [
        "MODE=edge",
        "WORKERS=4",
    ]


def test_environment_as_a_list_is_kept_as_it_is() -> None:
    assert options({"environment": ["MODE=edge", "DEBUG"]})["environment"] == [
        "MODE=edge",
        "DEBUG",
    ]


def test_volumes_are_passed_as_written() -> None:
    volumes = ["data:/var/lib/app", "/dev/ttyUSB0:/dev/ttyUSB0:rw"]

    assert options({"volumes": volumes})["volumes"] == volumes


@pytest.mark.parametrize("policy", ["always", "unless-stopped", "on-failure"])
def test_a_restart_policy_is_given_to_the_engine(policy: str) -> None:
    assert options({"restart": policy})["restart_policy"] == {"Name": policy}


@pytest.mark.parametrize("policy", ["no", "sometimes", ""])
def test_restart_no_or_an_unknown_policy_sets_no_restart_policy(policy: str) -> None:
    assert "restart_policy" not in options({"restart": policy})


def test_host_networking_drops_the_published_ports() -> None:
    created = options({"networkMode": "host", "ports": ["8080:80"]})

    assert created["network_mode"] == "host"
    assert "ports" not in created


def test_another_network_mode_keeps_the_published_ports() -> None:
    created = options({"network_mode": "bridge", "ports": ["8080:80"]})

    assert created["network_mode"] == "bridge"
    assert created["ports"] == {"80/tcp": 8080}


def test_command_and_entrypoint_strings_are_split_like_a_shell() -> None:
    created = options(
        {"command": "python -m app --name 'edge device'", "entrypoint": '/bin/sh -c "exec $0"'}
    )

    assert created["command"] == ["python", "-m", "app", "--name", "edge device"]
    assert created["entrypoint"] == ["/bin/sh", "-c", "exec $0"]


def test_a_command_given_as_a_list_is_kept_as_it_is() -> None:
    assert options({"command": ["echo", "a b"]})["command"] == ["echo", "a b"]


def test_user_working_dir_and_hostname_are_passed_on() -> None:
    created = options({"user": "1000:1000", "workingDir": "/srv", "hostname": "edge"})

    assert (created["user"], created["working_dir"], created["hostname"]) == (
        "1000:1000",
        "/srv",
        "edge",
    )


def test_the_services_own_labels_are_merged_with_fleetwaves() -> None:
    service = spec({"labels": {"com.example.team": "edge"}})

    labels = create_options(service, DEVICE_UUID)["labels"]

    assert labels == {
        "com.example.team": "edge",
        MANAGED: "true",
        SERVICE: "1001/web",
        IMAGE: "iotistic/web:v1",
        CONFIG: service.labels[CONFIG],
        DEVICE: DEVICE_UUID,
    }
    assert len(labels[CONFIG]) == 16


def test_a_service_label_cannot_override_fleetwaves_own() -> None:
    labels = options({"labels": {SERVICE: "someone/else", MANAGED: "false"}})["labels"]

    assert (labels[SERVICE], labels[MANAGED]) == ("1001/web", "true")


def test_container_names_differ_between_devices_sharing_one_engine() -> None:
    service = spec()

    assert container_name(service, "dev-1") == "web_1001_dev-1"
    assert container_name(service, "dev-1") != container_name(service, "dev-2")
    assert create_options(service, "dev-1")["name"] == "web_1001_dev-1"


def test_container_names_replace_characters_the_engine_refuses() -> None:
    name = container_name(spec(service_name="my web/api:v2"), "device #7")

    assert name == "my-web-api-v2_1001_device--7"


def test_containers_are_created_detached() -> None:
    assert options({})["detach"] is True
