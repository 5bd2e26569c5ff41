"""The master side: turn model changes into outbox events, written at commit."""
