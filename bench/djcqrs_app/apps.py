from django.apps import AppConfig


class BenchPeerConfig(AppConfig):
    name = "bench.djcqrs_app"
    label = "bench_djcqrs"
