"""Local fakes of the outside services Plugport's example integrations talk to. Each is a real
HTTP server on 127.0.0.1 that follows its service's documented requests, answers, error bodies
and rate-limit headers, including the failure paths a test switches on (``throttle``,
``fail_next``). Plugin authors use them through ``plugport.testing``:

    from plugport.testing.services.slack import FakeSlack

    def test_posts(plugin):
        with FakeSlack() as slack:
            slack.mount(plugin)  # plugin fetches to slack.com now reach the fake
            ...

Nothing here reaches the internet.
"""

from plugport.testing.services._service import (
    FakeService,
    Fault,
    Refusal,
    Reply,
    Sent,
    ServiceRequest,
    route,
    send,
)

__all__ = ["FakeService", "Fault", "Refusal", "Reply", "Sent", "ServiceRequest", "route", "send"]
