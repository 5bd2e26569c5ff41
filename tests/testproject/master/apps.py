from django.apps import AppConfig


class MasterConfig(AppConfig):
    name = "tests.testproject.master"
    label = "master"
