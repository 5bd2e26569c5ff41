from django.apps import AppConfig


class ChaosConfig(AppConfig):
    name = "tests.testproject.chaos"
    label = "chaos"
