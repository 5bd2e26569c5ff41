class PublisherSerializer:
    """Anything with `Serializer(instance).data` will do for django-cqrs."""

    def __init__(self, instance):
        self.instance = instance

    @property
    def data(self):
        return {"id": self.instance.pk, "title": self.instance.name.upper(),
                "books": self.instance.book_count}
