"""Which services must change (``plan``), and how the reconciler changes them: every image is
downloaded before any old container is killed (``Reconciler.apply``)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from fleetwave.agent.reconciler import Applied, Change, Reconciler, TargetSuperseded, plan
from fleetwave.agent.runtime import CONFIG, Container, RuntimeFailure, ServiceSpec
from fleetwave.agent.simulated import Behaviour, SimulatedRuntime


class RecordingRuntime(SimulatedRuntime):
    """A simulated runtime that keeps the order of what it was asked to do, and can refuse
    to start some images."""

    def __init__(self, *, fail_start: set[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.calls: list[tuple[str, str]] = []
        self.fail_start = fail_start or set()

    async def pull(self, image: str) -> None:
        self.calls.append(("pull", image))
        await super().pull(image)

    async def start(self, spec: ServiceSpec) -> Container:
        self.calls.append(("start", spec.image))
        if spec.image in self.fail_start:
            raise RuntimeFailure("start_failed", f"start of {spec.image} failed: exec format")
        return await super().start(spec)

    async def remove(self, container: Container) -> None:
        self.calls.append(("remove", container.image))
        await super().remove(container)


class Progress:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str | None]] = []

    async def __call__(self, key: str, status: str, error: str | None) -> None:
        self.seen.append((key, status, error))

    def statuses(self) -> list[tuple[str, str]]:
        return [(key, status) for key, status, _ in self.seen]


def spec(
    image: str = "iotistic/web:v1", config: dict[str, Any] | None = None, name: str = "web"
) -> ServiceSpec:
    return ServiceSpec(f"1001/{name}", "1001", name, 1, image, config or {})


def running(service: ServiceSpec, state: str = "running") -> Container:
    return Container(
        id=f"c-{service.service_name}",
        key=service.key,
        image=service.image,
        state=state,
        labels=service.labels,
    )


def apps(*services: tuple[str, str], config: dict[str, Any] | None = None) -> dict[str, Any]:
    """``apps(("web", "iotistic/web:v2"), ...)``: one app, these services."""
    return {
        "1001": {
            "appId": 1001,
            "services": [
                {"serviceName": name, "serviceId": i, "imageName": image, "config": config or {}}
                for i, (name, image) in enumerate(services, start=1)
            ],
        }
    }


async def runtime_running(*services: tuple[str, str], **kwargs: Any) -> RecordingRuntime:
    runtime = RecordingRuntime(images={image for _, image in services}, **kwargs)
    for name, image in services:
        await runtime.start(spec(image, name=name))
    runtime.calls.clear()
    return runtime


# plan -------------------------------------------------------------------------------------


def test_a_configuration_change_changes_the_config_digest() -> None:
    before, after = spec(config={"ports": ["80:80"]}), spec(config={"ports": ["8080:80"]})

    assert before.labels[CONFIG] != after.labels[CONFIG]
    assert (
        spec(config={"a": 1, "b": 2}).labels[CONFIG] == spec(config={"b": 2, "a": 1}).labels[CONFIG]
    )


def test_a_configuration_change_restarts_the_service() -> None:
    old = running(spec(config={"environment": {"MODE": "a"}}))
    new = spec(config={"environment": {"MODE": "b"}})

    assert plan([new], [old]) == [Change(new, old)]


def test_the_same_target_twice_plans_nothing() -> None:
    service = spec(config={"ports": ["80:80"]})

    assert plan([service], [running(service)]) == []


def test_a_new_image_replaces_the_container() -> None:
    old = running(spec("iotistic/web:v1"))
    new = spec("iotistic/web:v2")

    assert plan([new], [old]) == [Change(new, old)]


def test_a_new_service_is_started() -> None:
    assert plan([spec()], []) == [Change(spec(), None)]


def test_a_service_removed_from_the_target_is_stopped() -> None:
    kept, dropped = spec(name="web"), spec(name="worker")

    assert plan([kept], [running(kept), running(dropped)]) == [Change(None, running(dropped))]


@pytest.mark.parametrize("state", ["exited", "created", "paused"])
def test_a_container_that_is_not_running_is_restarted(state: str) -> None:
    service = spec()
    stopped = running(service, state)

    assert plan([service], [stopped]) == [Change(service, stopped)]


def test_a_container_whose_fleetwave_label_was_changed_is_replaced() -> None:
    service = spec()
    tampered = replace(running(service), labels=service.labels | {CONFIG: "0" * 16})

    assert plan([service], [tampered]) == [Change(service, tampered)]


PINNED = "registry.local:5000/web:v3@sha256:" + "ab" * 32
PINNED_TAGLESS = "registry.local:5000/web@sha256:" + "ab" * 32


def test_the_same_pinned_image_spelled_without_its_tag_restarts_nothing() -> None:
    """The server now serves ``repo@sha256:…`` for ``repo:v3@sha256:…``: a container started
    from the old spelling is left running, its configuration otherwise unchanged."""
    config = {"ports": ["80:80"]}
    old = running(spec(PINNED, config | {"image": PINNED}))

    assert plan([spec(PINNED_TAGLESS, config | {"image": PINNED_TAGLESS})], [old]) == []


def test_the_same_pinned_image_with_another_configuration_restarts_the_service() -> None:
    old = running(spec(PINNED, {"image": PINNED, "ports": ["80:80"]}))
    new = spec(PINNED_TAGLESS, {"image": PINNED_TAGLESS, "ports": ["8080:80"]})

    assert plan([new], [old]) == [Change(new, old)]


def test_another_digest_replaces_the_container() -> None:
    old = running(spec(PINNED))
    new = spec(PINNED_TAGLESS.replace("ab" * 32, "cd" * 32))

    assert plan([new], [old]) == [Change(new, old)]


# apply ------------------------------------------------------------------------------------


async def test_every_image_is_pulled_before_any_old_container_is_removed() -> None:
    runtime = await runtime_running(("web", "iotistic/web:v1"), ("api", "iotistic/api:v1"))

    await Reconciler(runtime).apply(
        apps(("web", "iotistic/web:v2"), ("api", "iotistic/api:v2")), Progress()
    )

    assert runtime.calls == [
        ("pull", "iotistic/web:v2"),
        ("pull", "iotistic/api:v2"),
        ("remove", "iotistic/web:v1"),
        ("start", "iotistic/web:v2"),
        ("remove", "iotistic/api:v1"),
        ("start", "iotistic/api:v2"),
    ]
    assert sorted(c.image for c in await runtime.containers()) == [
        "iotistic/api:v2",
        "iotistic/web:v2",
    ]


async def test_progress_says_pulling_then_updating() -> None:
    runtime = await runtime_running(("web", "iotistic/web:v1"))
    progress = Progress()

    await Reconciler(runtime).apply(apps(("web", "iotistic/web:v2")), progress)

    assert progress.statuses() == [("1001/web", "pulling"), ("1001/web", "updating")]


async def test_an_image_already_present_is_not_pulled_again() -> None:
    runtime = await runtime_running(("web", "iotistic/web:v1"))
    runtime.images.add("iotistic/web:v2")

    await Reconciler(runtime).apply(apps(("web", "iotistic/web:v2")), Progress())

    assert runtime.calls == [("remove", "iotistic/web:v1"), ("start", "iotistic/web:v2")]


async def test_a_failed_pull_leaves_the_old_container_running_and_reports_pull_failed() -> None:
    runtime = await runtime_running(
        ("web", "iotistic/web:v1"), behaviours={"v2": Behaviour(pull_fails=True)}
    )
    progress = Progress()

    applied = await Reconciler(runtime).apply(apps(("web", "iotistic/web:v2")), progress)

    [old] = await runtime.containers()
    assert (old.image, old.state) == ("iotistic/web:v1", "running")
    assert runtime.calls == [("pull", "iotistic/web:v2")]
    assert progress.statuses() == [("1001/web", "pulling"), ("1001/web", "pull_failed")]
    assert "manifest unknown" in str(progress.seen[-1][2])
    assert (applied.failed, applied.replaced) == (["1001/web"], {})


async def test_a_failed_pull_of_one_service_does_not_hold_back_the_others() -> None:
    runtime = await runtime_running(
        ("web", "iotistic/web:v1"),
        ("api", "iotistic/api:v1"),
        behaviours={"v2": Behaviour(pull_fails=True)},
    )

    applied = await Reconciler(runtime).apply(
        apps(("web", "iotistic/web:v2"), ("api", "iotistic/api:v3")), Progress()
    )

    assert sorted(c.image for c in await runtime.containers()) == [
        "iotistic/api:v3",
        "iotistic/web:v1",
    ]
    assert applied.failed == ["1001/web"]
    assert applied.replaced == {"1001/api": "iotistic/api:v1"}


async def test_a_start_failure_reports_start_failed() -> None:
    runtime = await runtime_running(("web", "iotistic/web:v1"), fail_start={"iotistic/web:v2"})
    progress = Progress()

    applied = await Reconciler(runtime).apply(apps(("web", "iotistic/web:v2")), progress)

    assert progress.statuses()[-1] == ("1001/web", "start_failed")
    assert "exec format" in str(progress.seen[-1][2])
    assert (applied.failed, applied.replaced) == (["1001/web"], {})


async def test_replaced_maps_each_service_whose_image_changed_to_its_old_image() -> None:
    runtime = await runtime_running(("web", "iotistic/web:v1"), ("api", "iotistic/api:v1"))
    runtime.images |= {"iotistic/web:v2", "iotistic/new:v1"}
    target = apps(
        ("web", "iotistic/web:v2"),  # new image
        ("api", "iotistic/api:v1"),  # same image, new configuration: restarted, not replaced
        ("new", "iotistic/new:v1"),  # nothing ran it before
        config={"environment": {"MODE": "b"}},
    )

    applied = await Reconciler(runtime).apply(target, Progress())

    assert applied == Applied(failed=[], replaced={"1001/web": "iotistic/web:v1"})
    assert ("remove", "iotistic/api:v1") in runtime.calls  # the configuration change restarted it


async def test_applying_the_same_target_twice_changes_nothing_the_second_time() -> None:
    runtime = await runtime_running(("web", "iotistic/web:v1"))
    target = apps(("web", "iotistic/web:v2"))
    await Reconciler(runtime).apply(target, Progress())
    runtime.calls.clear()

    applied = await Reconciler(runtime).apply(target, Progress())

    assert runtime.calls == []
    assert (applied.failed, applied.replaced) == ([], {})


async def test_a_newer_target_after_the_download_stops_nothing() -> None:
    runtime = await runtime_running(("web", "iotistic/web:v1"))

    async def superseded() -> bool:
        return True

    with pytest.raises(TargetSuperseded):
        await Reconciler(runtime).apply(apps(("web", "iotistic/web:v2")), Progress(), superseded)

    assert runtime.calls == [("pull", "iotistic/web:v2")]
    [old] = await runtime.containers()
    assert (old.image, old.state) == ("iotistic/web:v1", "running")


async def test_a_newer_target_between_two_downloads_skips_the_second() -> None:
    runtime = await runtime_running(("web", "iotistic/web:v1"), ("api", "iotistic/api:v1"))
    asked: list[list[tuple[str, str]]] = []

    async def superseded() -> bool:
        asked.append(list(runtime.calls))
        return True

    with pytest.raises(TargetSuperseded):
        await Reconciler(runtime).apply(
            apps(("web", "iotistic/web:v2"), ("api", "iotistic/api:v2")), Progress(), superseded
        )

    assert runtime.calls == [("pull", "iotistic/web:v2")]
    assert asked == [[("pull", "iotistic/web:v2")]]


async def test_superseded_is_not_asked_when_nothing_was_downloaded() -> None:
    runtime = await runtime_running(("web", "iotistic/web:v1"))
    runtime.images.add("iotistic/web:v2")

    async def superseded() -> bool:
        raise AssertionError("asked without a download")

    await Reconciler(runtime).apply(apps(("web", "iotistic/web:v2")), Progress(), superseded)

    assert [c.image for c in await runtime.containers()] == ["iotistic/web:v2"]
