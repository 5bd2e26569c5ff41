"""Write creates, updates and deletes on the django-cqrs master; print the expected state.

    DJANGO_SETTINGS_MODULE=tests.peers.master_settings python -m tests.peers.master.scenario
"""

import json
import os

import django


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.peers.master_settings")
    django.setup()
    from tests.peers.master.models import Author, Publisher, Tracked

    authors = [Author.objects.create(name=f"author {i}") for i in range(5)]
    authors[0].name = "renamed"
    authors[0].save()
    authors[1].delete()
    publisher = Publisher.objects.create(name="acme", book_count=2)
    publisher.book_count = 3
    publisher.save()
    gone = Publisher.objects.create(name="gone")
    gone.delete()
    tracked = Tracked.objects.create(name="t", status="open")
    tracked.status = "closed"
    tracked.save()
    print(json.dumps({
        "author": {a.pk: [a.name, a.cqrs_revision] for a in Author.objects.all()},
        "publisher": {p.pk: [p.name.upper(), p.book_count, p.cqrs_revision]
                      for p in Publisher.objects.all()},
        "tracked": {t.pk: [t.name, t.status, t.cqrs_revision] for t in Tracked.objects.all()},
    }))


def stale_deletes():
    """Delete through instances read before later saves, and create one pk again.

    django-cqrs sends a DELETE at the revision of the instance in memory plus one, here
    at or below the revision the replica holds. Prints the expected authors.
    """
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.peers.master_settings")
    django.setup()
    from tests.peers.master.models import Author

    gone, again = Author.objects.create(name="gone"), Author.objects.create(name="again")
    stale = {a.pk: Author.objects.get(pk=a.pk) for a in (gone, again)}
    for author in (gone, again):
        for n in range(3):
            author.name = f"{author.name} {n}"
            author.save()
    for instance in stale.values():
        instance.delete()
    Author.objects.create(id=again.pk, name="created again")
    print(json.dumps({a.pk: [a.name, a.cqrs_revision] for a in Author.objects.all()}))


if __name__ == "__main__":
    main()
