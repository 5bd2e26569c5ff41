from django.apps import AppConfig


class PeerConfig(AppConfig):
    name = "tests.integration.master.djcqrs_peer"
    label = "peer_master"
