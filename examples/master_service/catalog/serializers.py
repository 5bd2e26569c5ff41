"""CQRS_SERIALIZER for books: anything with `Serializer(instance).data` works.

A Django REST framework serializer fits here too; this one needs no extra package.
"""


class BookSerializer:
    def __init__(self, instance):
        self.instance = instance

    @property
    def data(self) -> dict:
        book = self.instance
        return {
            "id": book.pk,
            "title": book.title,
            "isbn": book.isbn,
            "price": str(book.price),
            "publisher": book.publisher_id,
            "publisher_name": book.publisher.name,
        }
