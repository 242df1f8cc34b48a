"""imgclf's developer tooling, not shipped: a local Ray cluster running imgclf (`make serve`,
the integration tests, the benchmarks), process and port helpers, and the load generator and
CPU accounting the benchmarks and reliability tests drive the server with."""
