"""Replication of the node's signed log to the hub (or a relay), catalog down, relaying."""
