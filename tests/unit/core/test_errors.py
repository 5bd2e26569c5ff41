"""Every error is of exactly one kind: recoverable, per message, or fatal."""

import pytest

from cqrs_outbox.core import errors

KINDS = (errors.RecoverableError, errors.MessageError, errors.FatalError)


@pytest.mark.parametrize(("error", "kind"), [
    (errors.BrokerUnavailable, errors.RecoverableError),
    (errors.DatabaseUnavailable, errors.RecoverableError),
    (errors.BadMessage, errors.MessageError),
    (errors.MessageRejected, errors.MessageError),
    (errors.HandlerFailed, errors.MessageError),
    (errors.EventBuildError, errors.MessageError),
    (errors.ConfigurationError, errors.FatalError),
    (errors.AccessRefused, errors.FatalError),
])
def test_error__belongs_to_one_kind(error, kind):
    assert [k for k in KINDS if issubclass(error, k)] == [kind]
    assert issubclass(error, errors.CQRSOutboxError)


def test_every_error_class__has_a_kind():
    classes = [c for c in vars(errors).values()
               if isinstance(c, type) and issubclass(c, errors.CQRSOutboxError)]
    unsorted = [c.__name__ for c in classes
                if c not in (errors.CQRSOutboxError, *KINDS) and not issubclass(c, KINDS)]
    assert unsorted == []


def test_handler_failed__keeps_the_error_behind_it():
    cause = ValueError("no")
    assert errors.HandlerFailed("returned None", cause).error is cause
    assert errors.HandlerFailed("returned None").error is None
