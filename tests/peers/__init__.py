"""django-cqrs peer projects: a master and a replica built on the `dj_cqrs` package.

They run as processes of their own (`python -m django ... --settings=tests.peers.<x>_settings`)
to show that our replica applies what django-cqrs masters publish, and that django-cqrs
replicas apply what we publish. Databases and broker names come from the environment.
"""
