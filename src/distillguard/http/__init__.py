"""The ASGI adapter: public /v1 API, /admin API, health and metrics. Thin: it translates HTTP to domain calls."""
