"""``pi-agent ctl``: a small client of a running agent, for scripts and debugging.

The secret is read from a file or the environment, never from argv (visible in ``ps``). Each
kind of failure has its own exit status, so scripts can tell them apart.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import stat
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from pi_secure_ws_protocol.devices import DeviceInfo, WireModel
from pi_secure_ws_protocol.errors import ErrorKind, PiSecureWsError, classify

from .console import err, out, print_json
from .errors import CliError

SECRET_ENV: Final = "PI_AGENT_SECRET"  # noqa: S105 - a variable name, not a secret

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2
EXIT_CANNOT_CONNECT: Final = 3
EXIT_INVALID_AUTH: Final = 4
EXIT_BLOCKED: Final = 5
EXIT_CERTIFICATE_MISMATCH: Final = 6
EXIT_SERVER_AUTH_FAILED: Final = 7
EXIT_COMMAND_ERROR: Final = 8
EXIT_TIMEOUT: Final = 9
EXIT_PROTOCOL_ERROR: Final = 10
EXIT_INTERRUPTED: Final = 130

# What each meaning of a failed connect, login or request exits with (classify() decides the
# meaning, and the message, for every caller of the protocol package).
EXIT_STATUS: Final[dict[ErrorKind, int]] = {
    ErrorKind.CANNOT_CONNECT: EXIT_CANNOT_CONNECT,
    ErrorKind.INVALID_AUTH: EXIT_INVALID_AUTH,
    ErrorKind.BLOCKED: EXIT_BLOCKED,
    ErrorKind.CERTIFICATE_MISMATCH: EXIT_CERTIFICATE_MISMATCH,
    ErrorKind.SERVER_AUTH_FAILED: EXIT_SERVER_AUTH_FAILED,
    ErrorKind.REFUSED: EXIT_COMMAND_ERROR,
    ErrorKind.FORBIDDEN: EXIT_COMMAND_ERROR,
    ErrorKind.COMMAND_FAILED: EXIT_COMMAND_ERROR,
    ErrorKind.TIMEOUT: EXIT_TIMEOUT,
    ErrorKind.PROTOCOL_ERROR: EXIT_PROTOCOL_ERROR,
}

EPILOG: Final = (
    f"The secret is read from --secret-file or ${SECRET_ENV}, never from the command line. "
    f"Exit status: {EXIT_CANNOT_CONNECT} cannot connect, {EXIT_INVALID_AUTH} invalid auth, "
    f"{EXIT_BLOCKED} blocked, {EXIT_CERTIFICATE_MISMATCH} certificate mismatch, "
    f"{EXIT_SERVER_AUTH_FAILED} agent failed its proof, {EXIT_COMMAND_ERROR} command error, "
    f"{EXIT_TIMEOUT} timeout, {EXIT_PROTOCOL_ERROR} protocol error."
)


def read_secret(secret_file: Path | None) -> str:
    """The secret from a file or the environment; never from argv (visible in ``ps``)."""
    if secret_file is not None:
        path = secret_file.expanduser()
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
            text = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise CliError(f"{path}: secret file not found") from None
        except (OSError, UnicodeDecodeError) as error:
            raise CliError(f"{path}: cannot read the secret file: {error}") from None
        if mode & 0o077:
            err(f"warning: {path} is readable by others; fix with: chmod 600 {path}")
        if not text:
            raise CliError(f"{path}: secret file is empty")
        return text
    text = os.environ.get(SECRET_ENV, "").strip()
    if not text:
        raise CliError(
            f"no secret: pass --secret-file PATH or set {SECRET_ENV} (never on the command line)",
            EXIT_USAGE,
        )
    return text


def parse_params(items: Sequence[str]) -> dict[str, Any]:
    """``key=value`` pairs; a value that parses as JSON is used as such (``5``, ``true``,
    ``[1,2]``), anything else is a string."""
    params: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"invalid parameter {item!r}: expected key=value", EXIT_USAGE)
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


def _jsonable(value: Any) -> Any:
    if isinstance(value, WireModel | DeviceInfo):  # the protocol's typed devices: as sent
        return value.to_wire()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def cmd_ctl(args: argparse.Namespace) -> int:
    secret = read_secret(args.secret_file)
    params = parse_params(args.params) if args.ctl_command == "call" else {}
    try:
        return asyncio.run(_ctl(args, secret, params))
    except KeyboardInterrupt:
        return EXIT_OK if args.ctl_command == "watch" else EXIT_INTERRUPTED


async def _ctl(args: argparse.Namespace, secret: str, params: dict[str, Any]) -> int:
    from pi_secure_ws_protocol.client import AgentClient, Disconnected, StateChanged

    client = AgentClient(
        args.host,
        args.port,
        client_id=args.client_id,
        secret=secret,
        fingerprint=args.fingerprint,
    )
    try:
        hello = await client.connect()
        if args.ctl_command == "state":
            print_json({"devices": _jsonable(hello.devices), "states": _jsonable(hello.states)})
            return EXIT_OK
        if args.ctl_command == "call":
            result = await client.call(args.device, args.action, params)
            return _print_call_result(result, args.output)
        # watch: the current states, then one JSON line per change until the agent goes away.
        finished: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

        def on_event(event: object) -> None:
            if isinstance(event, StateChanged):
                print(json.dumps({"device": event.device, "state": _jsonable(event.state)}))
                sys.stdout.flush()
            elif isinstance(event, Disconnected) and not finished.done():
                finished.set_result(event.error)

        client.add_listener(on_event)
        for device, state in _jsonable(hello.states).items():
            print(json.dumps({"device": device, "state": state}))
        sys.stdout.flush()
        error = await finished
        reason = f": {error}" if error else ""
        raise CliError(f"the agent closed the connection{reason}", EXIT_CANNOT_CONNECT)
    except PiSecureWsError as error:
        raise failure(error, host=args.host, port=args.port, client_id=args.client_id) from None
    finally:
        await client.close()


def failure(error: PiSecureWsError, *, host: str, port: int, client_id: str) -> CliError:
    """The line and exit status of a failed connect, login or request: classify()'s meaning."""
    meaning = classify(error, host=host, port=port, client_id=client_id)
    return CliError(meaning.message, EXIT_STATUS.get(meaning.kind, EXIT_ERROR))


def _print_call_result(result: Any, output: Path | None) -> int:
    data = getattr(result, "data", result)
    if isinstance(data, bytes | bytearray):
        if output is None:
            raise CliError(f"binary result ({len(data)} bytes): pass --output FILE to save it")
        output.write_bytes(data)
        out(f"wrote {len(data)} bytes to {output}")
        return EXIT_OK
    print_json(_jsonable(result))
    return EXIT_OK
