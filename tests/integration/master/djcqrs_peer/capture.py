"""A django-cqrs transport that keeps what it would publish."""

from dj_cqrs.transport.base import BaseTransport

PRODUCED = []


class CaptureTransport(BaseTransport):
    @staticmethod
    def produce(payload):
        PRODUCED.append(payload.to_dict())

    @staticmethod
    def consume(*args, **kwargs):
        raise NotImplementedError
