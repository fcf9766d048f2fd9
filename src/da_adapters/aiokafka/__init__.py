"""The aiokafka adapters: ``AiokafkaConsumer`` (the ``AsyncConsumer`` port) and
``AiokafkaProducer`` (the ``AsyncProducer`` port).

Configuration comes from ``da_adapters.kafka_config`` (``to_aiokafka_consumer`` /
``to_aiokafka_producer``, SSL contexts built from ``ClientConfig.ssl``); every wire type is
translated at this boundary (``da_adapters.aiokafka.translate``), so nothing returned is an
aiokafka object.
"""

from da_adapters.aiokafka._support import AiokafkaError, build_ssl_context
from da_adapters.aiokafka.consumer import AiokafkaConsumer
from da_adapters.aiokafka.producer import AiokafkaProducer
from da_adapters.aiokafka.translate import consumer_record_to_record

__all__ = [
    "AiokafkaConsumer",
    "AiokafkaError",
    "AiokafkaProducer",
    "build_ssl_context",
    "consumer_record_to_record",
]
