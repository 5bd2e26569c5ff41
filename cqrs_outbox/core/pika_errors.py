"""Translate pika's errors into ours, once, for the relay and the replica consumer alike.

Fatal: a refused login, a missing vhost or a refused permission (AccessRefused, with one
line naming the user, the host and what to fix), and a declaration the broker refuses
because an object of that name exists with other properties (ConfigurationError).
Per message (MessageRejected): an unroutable message, and, for a publisher that says it
was sending messages, a channel the broker closed over one of them (over its maximum
message size, say). Everything else means the broker or the network went away for now
(BrokerUnavailable), and is retried.
"""

from __future__ import annotations

import logging
import re

from pika import exceptions as pika_exceptions
from pika.adapters.utils import connection_workflow

from cqrs_outbox.core.errors import (
    AccessRefused,
    BrokerUnavailable,
    ConfigurationError,
    CQRSOutboxError,
    MessageRejected,
)
from cqrs_outbox.core.escape import one_line
from cqrs_outbox.core.urls import BrokerAddress

ACCESS_REFUSED = 403
NOT_FOUND = 404
PRECONDITION_FAILED = 406
NOT_ALLOWED = 530  # the vhost does not exist, or the user may not open it
TEXT_LIMIT = 300  # characters of a broker's error text quoted in a message
# Channel-close codes that mean "this message" rather than "this connection" while
# publishing: 406 PRECONDITION_FAILED (e.g. over the max message size), 311 CONTENT_TOO_LARGE.
MESSAGE_CLOSE_CODES = frozenset({311, 406})

_LOGIN_ERRORS = (pika_exceptions.AuthenticationError, pika_exceptions.ProbableAuthenticationError)
_CODE_IN_TEXT = re.compile(r"\((\d{3})\)")


def translate(exc: BaseException, address: BrokerAddress, what: str,
              precondition_hint: str = "", *, publishing: bool = False) -> CQRSOutboxError:
    """Return our error for a pika (or socket) error raised while doing `what`.

    `publishing`: messages were in flight, so a channel closed over one of them is that
    message's fault (MessageRejected), not the configuration's.
    """
    exc = unwrap(exc)
    code = reply_code(exc)
    if publishing and code in MESSAGE_CLOSE_CODES and _by_broker(exc):
        return MessageRejected(f"the broker closed the channel over a message: {text(exc)}")
    if isinstance(exc, _LOGIN_ERRORS) or (code == ACCESS_REFUSED and _at_connection(exc)):
        return login_refused(address)
    if isinstance(exc, pika_exceptions.ProbableAccessDeniedError) or code == NOT_ALLOWED:
        return vhost_refused(address)
    if code == ACCESS_REFUSED:
        return AccessRefused(
            f"the broker at {_where(address)} refused user {address.user!r} permission to "
            f"{what}: {text(exc)}. Grant the user configure, write and read permissions on "
            f"vhost {address.vhost!r} (rabbitmqctl set_permissions), or use another user."
        )
    if code == PRECONDITION_FAILED:
        hint = precondition_hint or "an object of that name exists with other properties"
        return ConfigurationError(f"the broker refused to {what}: {text(exc)}. {hint}")
    if isinstance(exc, pika_exceptions.UnroutableError):
        return MessageRejected(f"the broker could not route a message while trying to {what}")
    return BrokerUnavailable(f"broker at {address.safe_url} lost while trying to {what}: "
                             f"{text(exc)}")


def login_refused(address: BrokerAddress) -> AccessRefused:
    """Return the error of a refused login."""
    return AccessRefused(
        f"the broker at {_where(address)} refused the login of user {address.user!r}: "
        "fix the user name or password in the broker URL (percent-encode special "
        "characters), or create the user on the broker."
    )


def vhost_refused(address: BrokerAddress) -> AccessRefused:
    """Return the error of a vhost that is missing or closed to the user."""
    return AccessRefused(
        f"the broker at {_where(address)} refused user {address.user!r} the vhost "
        f"{address.vhost!r}: it does not exist or the user may not open it. Fix the vhost "
        "in the broker URL, create it (rabbitmqctl add_vhost), or grant the user access "
        "(rabbitmqctl set_permissions)."
    )


def is_fatal(error: BaseException) -> bool:
    """Tell whether retrying cannot help."""
    return isinstance(error, ConfigurationError)


def unwrap(exc: BaseException) -> BaseException:
    """Return the error under pika's connection-workflow wrappers."""
    if isinstance(exc, connection_workflow.AMQPConnectionWorkflowFailed) and exc.exceptions:
        exc = exc.exceptions[-1]
    if isinstance(exc, connection_workflow.AMQPConnectorPhaseErrorBase) and exc.exception:
        exc = exc.exception
    return exc


def reply_code(exc: BaseException) -> int | None:
    """Return the AMQP reply code an error carries, if any."""
    code = getattr(exc, "reply_code", None)
    if isinstance(code, int):
        return code
    if isinstance(exc, pika_exceptions.AMQPConnectionError) and exc.args:
        found = _CODE_IN_TEXT.search(str(exc.args[0]))
        return int(found.group(1)) if found else None
    return None


def text(exc: BaseException) -> str:
    """Return an error's message on one line, as the broker worded it."""
    exc = unwrap(exc)
    while exc.args and isinstance(exc.args[0], BaseException):
        exc = unwrap(exc.args[0])  # pika wraps the cause, sometimes twice
    reply = getattr(exc, "reply_text", None)
    words = f"{reply_code(exc)} {reply}" if reply else (str(exc).strip() or type(exc).__name__)
    return one_line(words, TEXT_LIMIT)


def quiet_pika() -> None:
    """Silence pika's own logging below CRITICAL.

    It logs every failed connection attempt; the relay and the consumer report broker
    trouble themselves, once per change of state, and without the URL's password.
    """
    logging.getLogger("pika").setLevel(logging.CRITICAL)


def _by_broker(exc: BaseException) -> bool:
    return isinstance(exc, pika_exceptions.ChannelClosedByBroker)


def _at_connection(exc: BaseException) -> bool:
    return isinstance(exc, (pika_exceptions.AMQPConnectionError,
                            pika_exceptions.ConnectionClosedByBroker))


def _where(address: BrokerAddress) -> str:
    return f"{address.host}:{address.port}"
