"""Create, update and delete a few catalog rows, each change in its own transaction."""

from decimal import Decimal

from django.core.management.base import BaseCommand
from django.db import transaction

from catalog.models import Book, Publisher

BOOKS = [
    ("Dune", "978-0441013593", "9.99", "Ace"),
    ("Neuromancer", "978-0441569595", "8.99", "Ace"),
    ("The Left Hand of Darkness", "978-0441478125", "10.50", "Ace"),
    ("Solaris", "978-0156027601", "12.00", "Harvest"),
    ("Roadside Picnic", "978-1613743416", "11.25", "Chicago Review Press"),
]


class Command(BaseCommand):
    help = "Write sample rows on the master (creates, updates, a delete, a draft)."

    def handle(self, *args, **options):
        done = []
        publishers = {}
        for title, isbn, price, publisher_name in BOOKS:
            if publisher_name not in publishers:
                publishers[publisher_name] = Publisher.objects.create(name=publisher_name)
                done.append(f"create publisher {publisher_name!r}")
            Book.objects.create(
                title=title, isbn=isbn, price=Decimal(price), publisher=publishers[publisher_name]
            )
            done.append(f"create book {title!r}")
        done += self._update_and_delete(publishers)
        self.stdout.write("\n".join(done))

    def _update_and_delete(self, publishers):
        done = []
        dune = Book.objects.get(title="Dune")
        dune.price = Decimal("7.49")
        dune.save()
        done.append("update book 'Dune': price 9.99 -> 7.49")
        # Two saves in one transaction give one event carrying the final state. Books
        # carry their publisher's name, and a related change does not publish them by
        # itself, so they are saved again in the same transaction.
        with transaction.atomic():
            ace = publishers["Ace"]
            ace.name = "Ace Books"
            ace.save()
            ace.website = "https://example.com/ace"
            ace.save()
            for book in ace.books.all():
                book.save()
        done.append("rename publisher 'Ace' -> 'Ace Books' and re-save its books (one transaction)")
        Book.objects.get(title="Neuromancer").delete()
        done.append("delete book 'Neuromancer'")
        Book.objects.create(
            title="Unfinished manuscript", price=Decimal("0"), publisher=publishers["Harvest"],
            is_draft=True,
        )
        done.append("create draft 'Unfinished manuscript' (is_sync_instance() is False)")
        return done
