"""Errors of the relay and of the outbox contract.

Recoverable errors (a broker or database away) are retried with back-off; fatal ones
(bad configuration, an undecodable message) are reported and never retried.
"""

from __future__ import annotations


class CQRSOutboxError(Exception):
    """Base class of every error this project raises."""


class RecoverableError(CQRSOutboxError):
    """Something outside is away for now; retrying later can succeed."""


class FatalError(CQRSOutboxError):
    """Retrying cannot help: the configuration or the input is wrong."""


class BrokerUnavailable(RecoverableError):
    """The broker cannot be reached or dropped the connection."""


class DatabaseUnavailable(RecoverableError):
    """The database cannot be reached or dropped the connection."""


class ConfigurationError(FatalError):
    """A setting or option is wrong; the message names it and how to fix it."""


class MessageRejected(FatalError):
    """The broker refused or returned one message; the others can go on."""


class BadMessage(FatalError):
    """A received message cannot be decoded or lacks what it must carry."""


class AccessRefused(ConfigurationError):
    """The broker refused the login, the vhost or a permission: the credentials are wrong."""


class EventBuildError(FatalError):
    """A master event could not be built at commit; the transaction was rolled back."""
