"""The replica side: decode incoming events, apply them by revision, retry, dead-letter.

`wire` validates bodies, `data` maps them onto replica models, `rules` decides by
revision, `store` holds the replica's SQL (locks, tombstones), `apply` applies batches,
`topology` names and declares the queues, `consumer` runs the pika loop, `workers`
supervises worker processes and `dead_letters` retries, dumps or purges dead letters.
"""
