"""Operations: the metrics endpoint, the streaming-query listener, graceful shutdown, checkpoint
checks, secrets and OpenLineage run events. Each module has one job; `commands/stream.py` wires
them around the streaming queries."""
