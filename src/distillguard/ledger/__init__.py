"""The durable record of every request and response."""
