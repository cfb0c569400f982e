"""Stand-ins for each capability's outside world, bound to one plugin under test, for
``plugport.testing`` and the capability records (``fake``). Each keeps the production code path
where it is cheap (the real storage on a temporary database, the real event bus, the real
settings check, the real network broker in front of a fake network) and adds what a test needs:
seeding, inspection, injection.

Every fake has the same shape, so the capability records can list them: ``Fake(runtime,
grants)`` for one plugin as the runtime granted it, ``.plugin``, and ``close()``. Nothing here
imports ``plugport.testing``; the runtime never needs it.
"""

from __future__ import annotations

from plugport.runtime.capabilities.fakes._cassette import REDACTED as REDACTED_VALUE
from plugport.runtime.capabilities.fakes.config import FakeConfig
from plugport.runtime.capabilities.fakes.events import FakeEvents
from plugport.runtime.capabilities.fakes.mail import FAKE_SENDER, FakeMail
from plugport.runtime.capabilities.fakes.net import (
    FAKE_ADDRESS,
    FakeNet,
    FakeNetwork,
    NoRouteError,
    RecordedRequest,
    Route,
)
from plugport.runtime.capabilities.fakes.secrets import FakeSecrets
from plugport.runtime.capabilities.fakes.storage import FakeStorage
from plugport.runtime.capabilities.fakes.tasks import FakeTasks, SubmittedTask
from plugport.runtime.capabilities.fakes.ui import FakeUi
from plugport.runtime.capabilities.fakes.webhooks import FakeWebhooks, SentWebhook

__all__ = [
    "FAKES",
    "FAKE_ADDRESS",
    "FAKE_SENDER",
    "REDACTED_VALUE",
    "FakeConfig",
    "FakeEvents",
    "FakeMail",
    "FakeNet",
    "FakeNetwork",
    "FakeSecrets",
    "FakeStorage",
    "FakeTasks",
    "FakeUi",
    "FakeWebhooks",
    "NoRouteError",
    "RecordedRequest",
    "Route",
    "SentWebhook",
    "SubmittedTask",
]

FAKES = {
    "config": FakeConfig,
    "events": FakeEvents,
    "mail": FakeMail,
    "net": FakeNet,
    "secrets": FakeSecrets,
    "storage": FakeStorage,
    "tasks": FakeTasks,
    "ui": FakeUi,
    "webhooks": FakeWebhooks,
}
"""Capability name -> its fake class, all built as ``Fake(runtime, grants)``."""
