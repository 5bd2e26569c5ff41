from django.apps import AppConfig


class PeerReplicaConfig(AppConfig):
    name = "tests.peers.replica"
    label = "peer_replica"
