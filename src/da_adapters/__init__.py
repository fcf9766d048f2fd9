"""Adapters: the in-memory bus, confluent-kafka, aiokafka, clocks and codecs.

Each translates its client's wire types to the core's types at the boundary, so nothing past
an adapter sees a client's message class.
"""
