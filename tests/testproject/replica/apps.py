from django.apps import AppConfig


class ReplicaConfig(AppConfig):
    name = "tests.testproject.replica"
    label = "replica"
