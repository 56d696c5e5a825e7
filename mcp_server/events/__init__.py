"""Subscription events: who hears about a session change, and how it travels.

* ``sessions``: ``SessionEvents``, the 2025-era subscribers per session, and the one call
  (``changed``) that publishes every change on the bus;
* ``requests``: the ``resources/subscribe``/``unsubscribe`` and ``subscriptions/listen``
  handlers, limited to the caller's own sessions;
* ``local``: the in-process bus; ``redis_bus``: the Redis pub/sub bus (publish and
  subscribe loops) over ``redis_links`` (one Redis connection kind per topology) and
  ``wire`` (the message format);
* ``listeners``: the listener registry, the bus capabilities beyond the SDK's
  ``SubscriptionBus``, and the stats a bus reports.
"""
