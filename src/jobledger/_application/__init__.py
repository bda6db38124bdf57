"""The application layer: the :class:`~jobledger.Jobs` facade and event delivery."""
