"""The HTTP upgrade: every request that is not a clean upgrade gets a 4xx with a one-line body.

Never a 500, never a traceback, never silence (admission.py answers requests that do not parse).
A refused upgrade counts against its source like a failed login, except the 429 of a block.
"""

from __future__ import annotations

import contextlib
import logging
import math
from http import HTTPStatus

from pi_secure_ws_protocol.const import PATH, SUBPROTOCOL
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from .admission import GatedConnection

_LOGGER = logging.getLogger(__name__)

# Headers the upgrade reads as one value: two of them are ambiguous, and refused.
SINGLE_HEADERS = (
    "Host",
    "Origin",
    "Upgrade",
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Version",
)


class UpgradeCheck:
    def __init__(self, allowed_origins: tuple[str, ...]) -> None:
        self.allowed_origins = allowed_origins

    def __call__(self, connection: ServerConnection, request: Request) -> Response | None:
        assert isinstance(connection, GatedConnection)
        try:
            problem = self._problem(connection, request)
        except Exception as err:  # a header websockets cannot read: the request is malformed
            problem = (HTTPStatus.BAD_REQUEST, "Malformed request.", f"malformed request: {err}")
        if problem is None:
            return None
        status, text, why = problem
        connection.upgrade_refused = True
        admission = connection.admission
        admission.refused += 1
        if status == HTTPStatus.TOO_MANY_REQUESTS:
            retry = admission.blocklist.retry_after(connection.source) or 1.0
            admission.blocklist.mark_notified(connection.source)
            admission.log.log(
                logging.INFO,
                "refused %s: blocked for %.0f s after failed logins",
                connection.source,
                retry,
                source=connection.source,
            )
            response = reject(connection, status, text)
            response.headers["Retry-After"] = str(math.ceil(retry))
            return response
        admission.failed(connection.source, f"refused upgrade: {why}")
        return reject(connection, status, text)

    def _problem(
        self, connection: GatedConnection, request: Request
    ) -> tuple[HTTPStatus, str, str] | None:
        if "?" in request.path:
            # Credentials must never travel in a URL: they end up in logs and histories.
            return (HTTPStatus.BAD_REQUEST, "Query strings are not accepted.", "query string")
        if request.path != PATH:
            return (HTTPStatus.NOT_FOUND, "Not found.", "wrong path")
        if connection.admission.blocklist.retry_after(connection.source) is not None:
            return (HTTPStatus.TOO_MANY_REQUESTS, "Too many failed logins.", "blocked")
        offered = ",".join(request.headers.get_all("Sec-WebSocket-Protocol"))
        if SUBPROTOCOL not in [p.strip() for p in offered.split(",")]:
            return (HTTPStatus.BAD_REQUEST, f"Use subprotocol {SUBPROTOCOL}.", "no subprotocol")
        origins = request.headers.get_all("Origin")
        if origins and origins[0] not in self.allowed_origins:
            return (
                HTTPStatus.FORBIDDEN,
                "Origin not allowed.",
                f"foreign Origin {origins[0][:100]!r}",
            )
        for name in SINGLE_HEADERS:
            if len(request.headers.get_all(name)) > 1:
                return (HTTPStatus.BAD_REQUEST, "Malformed request.", f"two {name} headers")
        return None


# websockets' own refusals, in our words: one line, no library version or exception text.
_LIBRARY_REFUSALS = {
    HTTPStatus.METHOD_NOT_ALLOWED: "Only GET upgrades.",
    HTTPStatus.UPGRADE_REQUIRED: "Upgrade to WebSocket required.",
    HTTPStatus.REQUEST_URI_TOO_LONG: "Request line too long.",
    HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE: "Headers too large.",
}


def one_line_response(
    connection: ServerConnection, request: Request, response: Response
) -> Response | None:
    """websockets' own refusals (405, 426, a bad key) get a one-line body, a 4xx, and count."""
    if response.status_code == HTTPStatus.SWITCHING_PROTOCOLS:
        return None
    if isinstance(connection, GatedConnection) and connection.upgrade_refused:
        return None  # ours, already in shape
    status = HTTPStatus(response.status_code)
    if status not in _LIBRARY_REFUSALS:
        # A bad key or version (400): malformed. admission.py answers HTTP/1.0 up front; any
        # other library status still becomes a 4xx, never a 5xx.
        status = HTTPStatus.BAD_REQUEST
    text = _LIBRARY_REFUSALS.get(status, "Malformed request.")
    if isinstance(connection, GatedConnection):
        connection.admission.refused += 1
        why = response.body.decode("utf-8", "replace").strip().splitlines()
        connection.admission.failed(connection.source, f"refused upgrade: {why[0][:100]}")
    replaced = reject(connection, status, text)
    if "Allow" in response.headers:
        replaced.headers["Allow"] = response.headers["Allow"]
    return replaced


def reject(connection: ServerConnection, status: HTTPStatus, text: str) -> Response:
    response = connection.respond(status, text + "\n")
    # websockets adds no Server header when server_header is None; make sure of it.
    _drop_header(response.headers, "Server")
    return response


def _drop_header(headers: Headers, name: str) -> None:
    with contextlib.suppress(KeyError):
        del headers[name]
