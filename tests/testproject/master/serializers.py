"""A CQRS_SERIALIZER without DRF: anything with `Serializer(instance).data` works."""


class PublisherSerializer:
    def __init__(self, instance):
        self.instance = instance

    @property
    def data(self):
        return {
            "id": self.instance.pk,
            "title": self.instance.name.upper(),
            "books": self.instance.book_count,
        }
