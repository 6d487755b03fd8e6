"""The iotistic target state: validation with paths, both image fields, ETags."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from fleetwave.domain.errors import InvalidInput, Problem
from fleetwave.domain.target_state import (
    engine_apps,
    normalize_config,
    normalize_target_apps,
    served_state,
    service_image,
    state_etag,
)

IMAGE = "iotistic/myapp:v2.0.0"


def a_service(**overrides: Any) -> dict[str, Any]:
    service: dict[str, Any] = {
        "serviceId": 1,
        "serviceName": "app",
        "imageName": IMAGE,
        "appId": 1001,
        "appName": "web",
        "config": {
            "image": IMAGE,
            "ports": ["8080:80"],
            "environment": {},
            "volumes": [],
            "restart": "always",
        },
    }
    service.update(overrides)
    return service


def with_config(**config_overrides: Any) -> dict[str, Any]:
    service = a_service()
    service["config"].update(config_overrides)
    return service


def apps_with(*services: Any, **app_overrides: Any) -> dict[str, Any]:
    app: dict[str, Any] = {"appId": 1001, "appName": "web", "services": list(services)}
    app.update(app_overrides)
    return {"1001": app}


def problems_of(apps: Any, **kwargs: Any) -> list[Problem]:
    with pytest.raises(InvalidInput) as caught:
        normalize_target_apps(apps, **kwargs)
    return caught.value.problems


def fields_of(apps: Any, **kwargs: Any) -> list[str]:
    return [p.field for p in problems_of(apps, **kwargs)]


# --- valid input and the two image fields ---------------------------------------------------


def test_design_example_target_is_accepted_unchanged() -> None:
    apps = apps_with(a_service())

    assert normalize_target_apps(apps) == apps


def test_empty_apps_are_accepted_as_empty() -> None:
    assert normalize_target_apps({}) == {}


def test_app_without_services_gets_an_empty_service_list() -> None:
    assert normalize_target_apps({"7": {"appId": 7, "appName": "x"}}) == {
        "7": {"appId": 7, "appName": "x", "services": []}
    }


def test_service_with_only_config_image_gets_both_image_fields() -> None:
    service = a_service()
    del service["imageName"]

    normalized = normalize_target_apps(apps_with(service))["1001"]["services"][0]

    assert normalized["imageName"] == IMAGE
    assert normalized["config"]["image"] == IMAGE


def test_service_with_only_image_name_gets_both_image_fields() -> None:
    service = a_service()
    del service["config"]["image"]

    normalized = normalize_target_apps(apps_with(service))["1001"]["services"][0]

    assert normalized["imageName"] == IMAGE
    assert normalized["config"]["image"] == IMAGE


def test_service_without_config_gets_a_config_carrying_the_image() -> None:
    service = a_service()
    del service["config"]

    normalized = normalize_target_apps(apps_with(service))["1001"]["services"][0]

    assert normalized["config"] == {"image": IMAGE}
    assert normalized["imageName"] == IMAGE


def test_normalizing_does_not_modify_the_input() -> None:
    service = a_service()
    del service["imageName"]
    apps = apps_with(service)
    before = copy.deepcopy(apps)

    normalize_target_apps(apps)

    assert apps == before


def test_unknown_fields_are_preserved_at_every_level() -> None:
    service = a_service(labels={"tier": "edge"}, futureField=[1, 2])
    service["config"]["networkMode"] = "host"
    apps = apps_with(service, releaseId=42, extra={"k": "v"})

    normalized = normalize_target_apps(apps)["1001"]

    assert normalized["releaseId"] == 42
    assert normalized["extra"] == {"k": "v"}
    assert normalized["services"][0]["labels"] == {"tier": "edge"}
    assert normalized["services"][0]["futureField"] == [1, 2]
    assert normalized["services"][0]["config"]["networkMode"] == "host"


def test_services_keep_their_order() -> None:
    first = a_service(serviceId=1, serviceName="one")
    second = a_service(serviceId=2, serviceName="two")

    normalized = normalize_target_apps(apps_with(first, second))["1001"]["services"]

    assert [s["serviceName"] for s in normalized] == ["one", "two"]


# --- image problems -----------------------------------------------------------------------


def test_image_name_differing_from_config_image_is_an_error_at_image_name() -> None:
    service = a_service(imageName="iotistic/myapp:v1")
    service["config"]["image"] = "iotistic/myapp:v2"

    problems = problems_of(apps_with(service))

    assert problems == [
        Problem(
            "apps.1001.services[0].imageName",
            "'iotistic/myapp:v1' differs from config.image 'iotistic/myapp:v2'",
        )
    ]


@pytest.mark.parametrize(
    ("image_name", "config_image"),
    [
        pytest.param(None, None, id="neither field"),
        pytest.param("", None, id="empty image name"),
        pytest.param(None, "", id="empty config image"),
        pytest.param("my app:v1", None, id="space in image name"),
        pytest.param(None, "myapp:\tv1", id="tab in config image"),
        pytest.param(123, None, id="image name not a string"),
    ],
)
def test_service_without_a_usable_image_is_an_error_at_image_name(
    image_name: Any, config_image: Any
) -> None:
    service = a_service()
    del service["imageName"], service["config"]["image"]
    if image_name is not None:
        service["imageName"] = image_name
    if config_image is not None:
        service["config"]["image"] = config_image

    problems = problems_of(apps_with(service))

    assert problems == [
        Problem(
            "apps.1001.services[0].imageName",
            "must name an image (no spaces or control characters)",
        )
    ]


# --- app and service structure -------------------------------------------------------------


@pytest.mark.parametrize(
    "apps",
    [
        pytest.param([], id="list"),
        pytest.param("apps", id="string"),
        pytest.param(None, id="null"),
    ],
)
def test_apps_that_are_not_an_object_are_rejected_at_the_field(apps: Any) -> None:
    assert problems_of(apps) == [Problem("apps", "must be an object keyed by appId")]


def test_field_name_is_used_as_the_root_of_every_path() -> None:
    service = a_service()
    del service["serviceName"]

    assert fields_of(apps_with(service), field="target.apps") == [
        "target.apps.1001.services[0].serviceName"
    ]


@pytest.mark.parametrize(
    ("apps", "field", "message"),
    [
        pytest.param(
            {"1001": "web"},
            "apps.1001",
            "must be an object",
            id="app not an object",
        ),
        pytest.param(
            {"1001": {"appName": "web", "services": []}},
            "apps.1001.appId",
            "must be an integer",
            id="missing appId",
        ),
        pytest.param(
            {"1001": {"appId": "1001", "appName": "web", "services": []}},
            "apps.1001.appId",
            "must be an integer",
            id="appId as string",
        ),
        pytest.param(
            {"1": {"appId": True, "appName": "web", "services": []}},
            "apps.1.appId",
            "must be an integer",
            id="appId as boolean",
        ),
        pytest.param(
            {"1001": {"appId": 1002, "appName": "web", "services": []}},
            "apps.1001.appId",
            "is 1002 but the app is keyed 1001",
            id="appId differs from key",
        ),
        pytest.param(
            {"1001": {"appId": 1001, "services": []}},
            "apps.1001.appName",
            "must be a non-empty string",
            id="missing appName",
        ),
        pytest.param(
            {"1001": {"appId": 1001, "appName": "  ", "services": []}},
            "apps.1001.appName",
            "must be a non-empty string",
            id="blank appName",
        ),
        pytest.param(
            {"1001": {"appId": 1001, "appName": "web", "services": {"0": {}}}},
            "apps.1001.services",
            "must be a list",
            id="services not a list",
        ),
    ],
)
def test_malformed_app_is_rejected_with_its_path(apps: Any, field: str, message: str) -> None:
    assert problems_of(apps) == [Problem(field, message)]


def test_non_numeric_app_key_is_rejected_at_the_app() -> None:
    apps = {"web": {"appId": 1001, "appName": "web", "services": []}}

    assert problems_of(apps) == [
        Problem("apps.web", "app keys must be numeric appIds"),
        Problem("apps.web.appId", "is 1001 but the app is keyed web"),
    ]


@pytest.mark.parametrize(
    ("service", "field", "message"),
    [
        pytest.param("app", "apps.1001.services[0]", "must be an object", id="not an object"),
        pytest.param(
            a_service(serviceId="1"),
            "apps.1001.services[0].serviceId",
            "must be an integer",
            id="serviceId as string",
        ),
        pytest.param(
            a_service(serviceId=False),
            "apps.1001.services[0].serviceId",
            "must be an integer",
            id="serviceId as boolean",
        ),
        pytest.param(
            a_service(serviceName=""),
            "apps.1001.services[0].serviceName",
            "must be a non-empty string",
            id="empty serviceName",
        ),
        pytest.param(
            a_service(serviceName=7),
            "apps.1001.services[0].serviceName",
            "must be a non-empty string",
            id="serviceName not a string",
        ),
        pytest.param(
            a_service(config=["image", IMAGE]),
            "apps.1001.services[0].config",
            "must be an object",
            id="config not an object",
        ),
    ],
)
def test_malformed_service_is_rejected_with_its_path(
    service: Any, field: str, message: str
) -> None:
    assert problems_of(apps_with(service)) == [Problem(field, message)]


def test_problem_in_second_service_names_its_index() -> None:
    good = a_service(serviceId=1, serviceName="one")
    bad = a_service(serviceId="two", serviceName="two")

    assert fields_of(apps_with(good, bad)) == ["apps.1001.services[1].serviceId"]


def test_duplicate_service_name_is_an_error_on_the_services_list() -> None:
    first = a_service(serviceId=1)
    second = a_service(serviceId=2)

    assert problems_of(apps_with(first, second)) == [
        Problem("apps.1001.services", "duplicate serviceName 'app'")
    ]


def test_same_service_name_in_different_apps_is_fine() -> None:
    apps = {
        **apps_with(a_service()),
        "1002": {"appId": 1002, "appName": "api", "services": [a_service(appId=1002)]},
    }

    assert set(normalize_target_apps(apps)) == {"1001", "1002"}


def test_every_problem_is_reported_not_just_the_first() -> None:
    bad_service = a_service(serviceId="x", serviceName="")
    apps = {
        **apps_with(bad_service),
        "1002": {"appId": 1003, "appName": "", "services": []},
    }

    assert sorted(fields_of(apps)) == [
        "apps.1001.services[0].serviceId",
        "apps.1001.services[0].serviceName",
        "apps.1002.appId",
        "apps.1002.appName",
    ]


def test_invalid_input_message_lists_each_problem_with_its_path() -> None:
    service = a_service(serviceId="x", serviceName="")

    with pytest.raises(InvalidInput) as caught:
        normalize_target_apps(apps_with(service))

    assert str(caught.value) == (
        "apps.1001.services[0].serviceId: must be an integer; "
        "apps.1001.services[0].serviceName: must be a non-empty string"
    )


# --- config checks (ports, environment, volumes, restart) ----------------------------------


@pytest.mark.parametrize(
    "config",
    [
        pytest.param({"ports": ["8080:80", 9000, "127.0.0.1:53:53/udp"]}, id="ports"),
        pytest.param({"ports": []}, id="no ports"),
        pytest.param(
            {"environment": {"A": "1", "B": 2, "C": 1.5, "D": True}},
            id="environment of scalars",
        ),
        pytest.param({"volumes": ["data:/data", "/etc/x:/x:ro"]}, id="volumes"),
        pytest.param({"restart": "no"}, id="restart no"),
        pytest.param({"restart": "always"}, id="restart always"),
        pytest.param({"restart": "on-failure"}, id="restart on-failure"),
        pytest.param({"restart": "unless-stopped"}, id="restart unless-stopped"),
    ],
)
def test_valid_config_values_are_accepted_as_given(config: dict[str, Any]) -> None:
    service = with_config(**config)

    normalized = normalize_target_apps(apps_with(service))["1001"]["services"][0]

    assert normalized["config"] == service["config"]


@pytest.mark.parametrize(
    ("config", "field", "message"),
    [
        pytest.param(
            {"ports": "8080:80"}, "ports", "must be a list of port mappings", id="ports string"
        ),
        pytest.param({"ports": [None]}, "ports", "must be a list of port mappings", id="null port"),
        pytest.param(
            {"ports": [{"80": 8080}]}, "ports", "must be a list of port mappings", id="port dict"
        ),
        pytest.param(
            {"environment": ["A=1"]}, "environment", "must map names to values", id="env list"
        ),
        pytest.param(
            {"environment": {"A": None}}, "environment", "must map names to values", id="env null"
        ),
        pytest.param(
            {"environment": {"A": {"nested": 1}}},
            "environment",
            "must map names to values",
            id="env nested",
        ),
        pytest.param(
            {"volumes": "data:/data"}, "volumes", "must be a list of strings", id="volumes string"
        ),
        pytest.param({"volumes": [1]}, "volumes", "must be a list of strings", id="volume int"),
        pytest.param(
            {"restart": "sometimes"},
            "restart",
            "must be one of no, always, on-failure, unless-stopped",
            id="restart unknown",
        ),
        pytest.param(
            {"restart": "Always"},
            "restart",
            "must be one of no, always, on-failure, unless-stopped",
            id="restart wrong case",
        ),
    ],
)
def test_malformed_config_value_is_rejected_with_its_path(
    config: dict[str, Any], field: str, message: str
) -> None:
    service = with_config(**config)

    assert problems_of(apps_with(service)) == [
        Problem(f"apps.1001.services[0].config.{field}", message)
    ]


# --- normalize_config ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        pytest.param(None, {}, id="null becomes empty"),
        pytest.param({}, {}, id="empty stays empty"),
        pytest.param(
            {"RESIN_HOST_LOG": "1", "n": {"x": 1}},
            {"RESIN_HOST_LOG": "1", "n": {"x": 1}},
            id="values kept",
        ),
    ],
)
def test_config_object_is_returned_as_a_copy(config: Any, expected: dict[str, Any]) -> None:
    normalized = normalize_config(config)

    assert normalized == expected
    assert normalized is not config


@pytest.mark.parametrize("config", [[], "x", 1, True])
def test_config_that_is_not_an_object_is_rejected_at_its_field(config: Any) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_config(config, field="body.config")

    assert caught.value.problems == [Problem("body.config", "must be an object")]


# --- state_etag ----------------------------------------------------------------------------


def test_etag_is_a_quoted_strong_tag_of_32_hex_digits() -> None:
    assert re.fullmatch(r'"[0-9a-f]{32}"', state_etag(apps_with(a_service()), {}))


def test_etag_of_empty_state_is_stable_across_releases() -> None:
    # devices keep the tag they were served; changing how it is computed re-sends every state
    assert state_etag({}, {}) == '"32e83ba4050946596b1fa9f1cc396de0"'


def test_equal_content_gives_equal_etag_regardless_of_key_order() -> None:
    first = {"1001": {"appId": 1001, "appName": "web", "services": [{"a": 1, "b": 2}]}}
    second = {"1001": {"services": [{"b": 2, "a": 1}], "appName": "web", "appId": 1001}}

    assert state_etag(first, {"x": 1, "y": 2}) == state_etag(second, {"y": 2, "x": 1})


@pytest.mark.parametrize(
    ("one", "other"),
    [
        pytest.param(({}, {}), ({}, {"x": 1}), id="config added"),
        pytest.param(({"a": 1}, {}), ({}, {"a": 1}), id="same content moved apps to config"),
        pytest.param(
            (apps_with(a_service()), {}),
            (apps_with(a_service(imageName="iotistic/myapp:v2.0.1")), {}),
            id="image changed",
        ),
        pytest.param(({"a": [1, 2]}, {}), ({"a": [2, 1]}, {}), id="list order"),
        pytest.param(({"a": 1}, {}), ({"a": "1"}, {}), id="number vs string"),
    ],
)
def test_different_content_gives_different_etag(
    one: tuple[dict[str, Any], dict[str, Any]], other: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    assert state_etag(*one) != state_etag(*other)


# --- what devices are served: pinned images without their tag --------------------------------

DIGEST = "sha256:" + "ab" * 32
PINNED = f"registry.local:5000/acme/app:v3@{DIGEST}"
TAGLESS = f"registry.local:5000/acme/app@{DIGEST}"


def test_a_pinned_image_is_served_without_its_tag_in_both_fields() -> None:
    apps = apps_with(a_service(imageName=PINNED, config={"image": PINNED, "restart": "always"}))

    served = served_state(apps, {}, None)["apps"]["1001"]["services"][0]

    assert served["imageName"] == served["config"]["image"] == TAGLESS
    assert served["config"]["restart"] == "always"
    assert apps["1001"]["services"][0]["imageName"] == PINNED  # the stored target keeps its tag


def test_only_the_pinned_services_change_and_the_rest_is_served_as_stored() -> None:
    plain = a_service(serviceName="plain")
    pinned = a_service(serviceName="pinned", imageName=PINNED, config={"image": PINNED})
    apps = apps_with(plain, pinned) | {"1002": {"appId": 1002, "appName": "db", "services": []}}

    served = engine_apps(apps)

    assert served["1001"]["services"][0] is plain
    assert served["1001"]["services"][1]["imageName"] == TAGLESS
    assert served["1002"] is apps["1002"]


def test_apps_without_a_pinned_tag_are_served_as_they_are_without_a_copy() -> None:
    for apps in (apps_with(a_service()), apps_with(a_service(imageName=TAGLESS)), {}):
        assert engine_apps(apps) is apps


def test_the_etag_covers_what_is_served() -> None:
    def stored(image: str) -> dict[str, Any]:
        return apps_with(a_service(imageName=image, config={"image": image}))

    assert state_etag(stored(PINNED), {}) == state_etag(stored(TAGLESS), {})
    assert state_etag(stored(PINNED), {}) != state_etag(stored(f"{TAGLESS[:-1]}0"), {})


def test_malformed_apps_are_served_as_they_are() -> None:
    apps: dict[str, Any] = {"1": "not an app", "2": {"services": ["x", {"imageName": 5}]}}

    assert engine_apps(apps) is apps


# --- service_image -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        pytest.param({"imageName": "a:1"}, "a:1", id="image name only"),
        pytest.param({"config": {"image": "b:2"}}, "b:2", id="config image only"),
        pytest.param(
            {"imageName": "a:1", "config": {"image": "b:2"}}, "a:1", id="image name first"
        ),
        pytest.param(
            {"imageName": "", "config": {"image": "b:2"}}, "b:2", id="empty name falls back"
        ),
        pytest.param({"imageName": None, "config": {"image": "b:2"}}, "b:2", id="null name"),
        pytest.param({}, None, id="neither"),
        pytest.param({"config": {}}, None, id="config without image"),
        pytest.param({"config": "b:2"}, None, id="config not an object"),
        pytest.param({"imageName": 5}, None, id="name not a string"),
        pytest.param({"config": {"image": ""}}, None, id="empty config image"),
    ],
)
def test_service_image_reads_either_field(service: dict[str, Any], expected: str | None) -> None:
    assert service_image(service) == expected
