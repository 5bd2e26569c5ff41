import pytest

from cqrs_outbox.core import wire
from cqrs_outbox.registry import ReplicaRegistry
from cqrs_outbox.replica import apply


def _apply(*bodies):
    """Validate bodies as the consumer does and apply them as one batch."""
    batch = []
    for dct in bodies:
        envelope = wire.validate(dct)
        batch.append((envelope, ReplicaRegistry.get_model_by_cqrs_id(envelope.cqrs_id)))
    return [o.status for o in apply.apply(batch)]


@pytest.fixture
def apply_batch():
    """Return a function applying event bodies as one batch and listing the outcomes."""
    return _apply
