"""OPC UA adapter: discovery by browsing, subscriptions, reconnection, reads and writes."""
