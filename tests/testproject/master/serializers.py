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


class WriterSerializer:
    def __init__(self, instance):
        self.instance = instance

    @property
    def data(self):
        return {
            "id": self.instance.pk,
            "name": self.instance.name,
            "books": [b.title for b in sorted(self.instance.books.all(), key=lambda b: b.pk)],
        }


class FragileSerializer:
    def __init__(self, instance):
        self.instance = instance

    @property
    def data(self):
        if self.instance.name.startswith("boom"):
            raise ValueError(f"cannot serialise {self.instance.name!r}")
        return {"id": self.instance.pk, "name": self.instance.name}
