"""The confluent-kafka (librdkafka) adapters: ``ConfluentConsumer`` (the sync ``Consumer``
port) and ``ConfluentProducer`` (the sync ``Producer`` port).

Configuration comes from ``da_adapters.kafka_config`` (``to_librdkafka_consumer`` /
``to_librdkafka_producer``); every wire type is translated at this boundary
(``da_adapters.confluent.translate``), so nothing returned is a confluent-kafka object.
"""

from da_adapters.confluent._support import ConfluentError, LibrdkafkaLogBridge
from da_adapters.confluent.consumer import ConfluentConsumer
from da_adapters.confluent.producer import ConfluentProducer, delivery_report
from da_adapters.confluent.translate import message_to_record

__all__ = [
    "ConfluentConsumer",
    "ConfluentError",
    "ConfluentProducer",
    "LibrdkafkaLogBridge",
    "delivery_report",
    "message_to_record",
]
