"""Field side of sensing: SenML wire format, topics, registry, ingest, QC, simulators."""
