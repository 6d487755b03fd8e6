"""Wiring: build every service once, from one settings object, a clock and a database."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from fleetwave.clock import Clock, SystemClock
from fleetwave.devices.failed_auth import FailedAuthentications
from fleetwave.devices.last_seen import LastSeenWriter
from fleetwave.devices.logs import DeviceLogs
from fleetwave.devices.metric_samples import MetricSamplePruning
from fleetwave.devices.protocol import DeviceProtocol
from fleetwave.devices.service import DeviceService
from fleetwave.devices.target_watch import TargetWatch
from fleetwave.health.probes import Prober
from fleetwave.notifications import Notifier
from fleetwave.ops.metrics import FleetMetrics
from fleetwave.policies.service import PolicyService
from fleetwave.provisioning.service import ProvisioningService
from fleetwave.ratelimit import RateLimiter
from fleetwave.registries.payloads import PROVIDERS
from fleetwave.registries.poller import RegistryPoller
from fleetwave.registries.registry_service import RegistryService
from fleetwave.registries.sealing import Sealer
from fleetwave.registries.service import WebhookService
from fleetwave.rings.service import RingService
from fleetwave.rollouts.analysis import BatchAnalysis
from fleetwave.rollouts.broadcast import EventBroadcast
from fleetwave.rollouts.controls import RolloutControls
from fleetwave.rollouts.deliveries import DeliveryPlanner
from fleetwave.rollouts.health import DeviceHealth, ServerProbes
from fleetwave.rollouts.manager import ImageUpdateManager
from fleetwave.rollouts.monitor import RolloutMonitor
from fleetwave.rollouts.progress import DeviceProgress
from fleetwave.rollouts.service import RolloutService
from fleetwave.rollouts.stream import EventStream
from fleetwave.rollouts.waker import Waker
from fleetwave.security import load_or_create_admin_token, load_or_create_secret
from fleetwave.settings import Settings
from fleetwave.store.db import Database
from fleetwave.telemetry import Telemetry
from fleetwave.users.authentication import Authenticator, LoginLimits
from fleetwave.users.passwords import Passwords
from fleetwave.users.service import UserService

log = logging.getLogger("fleetwave")


@dataclass
class Container:
    settings: Settings
    clock: Clock
    db: Database
    admin_token: str
    devices: DeviceService
    protocol: DeviceProtocol
    device_logs: DeviceLogs
    provisioning: ProvisioningService
    policies: PolicyService
    rings: RingService
    manager: ImageUpdateManager
    rollouts: RolloutService
    webhooks: WebhookService
    registries: RegistryService
    poller: RegistryPoller
    waker: Waker
    monitor: RolloutMonitor
    controls: RolloutControls
    device_health: DeviceHealth
    notifier: Notifier
    telemetry: Telemetry
    metrics: FleetMetrics
    registration_limiter: RateLimiter
    broadcast: EventBroadcast
    event_stream: EventStream
    target_watch: TargetWatch
    last_seen: LastSeenWriter
    users: UserService
    authenticator: Authenticator


def resolve_admin_token(settings: Settings) -> str:
    """The configured admin token, else the one kept in the data directory (made once)."""
    if settings.admin_token is not None:
        return settings.admin_token.get_secret_value()
    token, created = load_or_create_admin_token(settings.admin_token_path)
    verb = "generated a new admin token in" if created else "admin token is in"
    log.warning("%s %s (mode 0600)", verb, settings.admin_token_path.resolve())
    return token


def resolve_webhook_secrets(settings: Settings) -> dict[str, str]:
    """Each provider's secret: its own, else the shared one, else one generated once."""
    shared = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
    if shared is None and len(settings.webhook_secrets) < len(PROVIDERS):
        shared, created = load_or_create_secret(settings.webhook_secret_path, "fww_")
        if created:
            log.warning("generated a webhook secret in %s", settings.webhook_secret_path.resolve())
    own = {name: secret.get_secret_value() for name, secret in settings.webhook_secrets.items()}
    return {provider: own.get(provider) or shared or "" for provider in PROVIDERS}


def resolve_registry_sealer(settings: Settings) -> Sealer:
    """The sealer of registry passwords, keyed by the data directory's registry key."""
    key, created = load_or_create_secret(settings.registry_key_path, "fwr_")
    if created:
        log.warning("generated a registry key in %s", settings.registry_key_path.resolve())
    return Sealer(key)


def build(
    settings: Settings,
    clock: Clock | None = None,
    db: Database | None = None,
    passwords: Passwords | None = None,
) -> Container:
    clock = clock or SystemClock()
    passwords = passwords or Passwords()
    db = db or Database(settings.resolved_database_url, pool_size=settings.database_pool_size)
    notifier = Notifier(settings.notify_webhooks)
    db.committed.append(notifier.publish)
    broadcast = EventBroadcast(db.url)
    db.committed.append(broadcast.published)
    target_watch = TargetWatch(db.url, settings.poll_cache_size)
    db.committed.append(target_watch.published)
    admin_token = resolve_admin_token(settings)
    telemetry = Telemetry(webhook_providers=PROVIDERS)
    db.committed.append(telemetry.events_committed)
    manager = ImageUpdateManager(db, clock, settings)
    waker = Waker()
    last_seen = LastSeenWriter(db, settings.last_seen_flush_seconds)
    protocol = DeviceProtocol(
        db,
        clock,
        settings,
        DeviceProgress(waker),
        telemetry=telemetry,
        watch=target_watch,
        cache=target_watch.cache,
        last_seen=last_seen,
        failures=FailedAuthentications(
            clock,
            per_address=settings.device_auth_failures_per_address,
            per_uuid=settings.device_auth_failures_per_uuid,
            window=timedelta(seconds=settings.device_auth_failure_window),
        ),
    )
    prober = Prober(clock, settings.health_probe_concurrency)
    probes = ServerProbes(db, prober, telemetry)
    planner = DeliveryPlanner(db, clock, manager, waker, telemetry)
    device_logs = DeviceLogs(db, clock, settings)
    sealer = resolve_registry_sealer(settings)
    monitor = RolloutMonitor(
        db,
        clock,
        settings,
        waker,
        probes,
        telemetry=telemetry,
        deliveries=planner,
        chores=[device_logs, MetricSamplePruning(db, clock)],
        analysis=BatchAnalysis(db),  # one HTTP client per evaluation: analyses are rare
    )
    return Container(
        settings=settings,
        clock=clock,
        db=db,
        admin_token=admin_token,
        devices=DeviceService(db, clock, settings),
        protocol=protocol,
        device_logs=device_logs,
        provisioning=ProvisioningService(db, clock),
        policies=PolicyService(db, clock, settings),
        rings=RingService(db, clock),
        manager=manager,
        rollouts=RolloutService(db, manager, clock, settings.device_offline_after),
        webhooks=WebhookService(
            db,
            planner,
            resolve_webhook_secrets(settings),
            telemetry,
            answer_wait=settings.webhook_answer_wait,
        ),
        registries=RegistryService(db, clock, sealer),
        poller=RegistryPoller(db, clock, planner, sealer, telemetry),
        telemetry=telemetry,
        metrics=FleetMetrics(db, telemetry, settings.max_failure_rate),
        waker=waker,
        monitor=monitor,
        controls=RolloutControls(db, clock, monitor, waker),
        device_health=DeviceHealth(db, clock, protocol, waker, telemetry),
        notifier=notifier,
        registration_limiter=RateLimiter(clock, settings.register_rate_per_minute),
        broadcast=broadcast,
        event_stream=EventStream(db, broadcast, heartbeat_seconds=settings.event_stream_heartbeat),
        target_watch=target_watch,
        last_seen=last_seen,
        users=UserService(db, clock, passwords),
        authenticator=Authenticator(
            db,
            clock,
            passwords,
            None if settings.admin_token_disabled else admin_token,
            timedelta(hours=settings.session_hours),
            LoginLimits(
                settings.login_failures_per_user,
                settings.login_failures_per_address,
                settings.login_failure_window,
            ),
        ),
    )
