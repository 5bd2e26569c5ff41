from django.apps import AppConfig


class PeerMasterConfig(AppConfig):
    name = "tests.peers.master"
    label = "peer_master"
