"""Every error this project raises, in three kinds that say what to do about it.

- Recoverable (`RecoverableError`): the broker or the database is away for now. Retry
  with back-off; nothing is lost meanwhile.
- Per message (`MessageError`): this one message is bad, or its handler failed. Retry it
  or dead-letter it, and go on with the others.
- Fatal (`FatalError`): the configuration or the credentials are wrong. Retrying cannot
  help: stop with one line that names the setting and the fix.
"""

from __future__ import annotations


class CQRSOutboxError(Exception):
    """Base class of every error this project raises."""


class RecoverableError(CQRSOutboxError):
    """Something outside is away for now; retrying later can succeed."""


class MessageError(CQRSOutboxError):
    """One message cannot go through as it is; the others can go on."""


class FatalError(CQRSOutboxError):
    """Retrying cannot help: the configuration or the credentials are wrong."""


class BrokerUnavailable(RecoverableError):
    """The broker cannot be reached or dropped the connection."""


class DatabaseUnavailable(RecoverableError):
    """The database cannot be reached or dropped the connection."""


class MessageRejected(MessageError):
    """The broker refused or returned one message; the others can go on."""


class BadMessage(MessageError):
    """A received message cannot be decoded or lacks what it must carry."""


class HandlerFailed(MessageError):
    """A model's handler returned nothing, which django-cqrs counts as a failure."""

    def __init__(self, message: str, error: BaseException | None = None) -> None:
        super().__init__(message)
        self.error = error


class EventBuildError(MessageError):
    """A master event could not be built at commit; the transaction was rolled back."""


class ConfigurationError(FatalError):
    """A setting or option is wrong; the message names it and how to fix it."""


class AccessRefused(ConfigurationError):
    """The broker refused the login, the vhost or a permission: the credentials are wrong."""
