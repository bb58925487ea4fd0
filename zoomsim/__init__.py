"""zoomsim: a local stand-in for Zoom's platform (OAuth, REST, webhooks, RTMS). See README.md."""
