"""Stubber helpers for the responder tests: answer only the calls moto lacks, and let every other call reach moto."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.stub import Stubber

from responders.base import ActionContext


class PartialStubber(Stubber):
    """A Stubber for the operations moto lacks; every other call on the client goes through to moto.

    `effects[operation](params)` runs when a stubbed call is answered, to change moto the way AWS would.
    """

    def __init__(self, client: Any, effects: dict[str, Callable[[dict[str, Any]], None]]) -> None:
        super().__init__(client)
        self._effects = effects
        self._request: dict[str, Any] = {}

    def _assert_expected_params(self, model: Any, params: Any, context: Any, **kwargs: Any) -> None:
        if model.name in self._effects:
            self._request = dict(params)  # the API parameters, for the effect
            super()._assert_expected_params(model, params, context, **kwargs)

    def _get_response_handler(self, model: Any, params: Any, context: Any, **kwargs: Any) -> Any:
        if model.name not in self._effects:
            return None  # not stubbed: the request goes to moto
        response = super()._get_response_handler(model, params, context, **kwargs)
        self._effects[model.name](self._request)
        return response


def pin_clients(monkeypatch: pytest.MonkeyPatch, ctx: ActionContext) -> dict[str, Any]:
    """Make `ctx.client(service)` return one client per service, so a test can attach a Stubber to it."""
    clients: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in clients:
            clients[service] = ctx.session.client(service, endpoint_url=ctx.endpoint_url)
        return clients[service]

    monkeypatch.setattr(ctx, "client", client)
    return clients
