"""Subscription events: who hears about a session change, and how it travels."""
