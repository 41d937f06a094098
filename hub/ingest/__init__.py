"""Ingest: verify pushed batches against each node's key and chain, then store them.

Pure functions on the hub database (no HTTP), one module per concern; callers import the
module that holds what they use:

- :mod:`hub.ingest.envelope`: a push's request body parsed and its shape checked, the keys
  it announces for its signed request, and the push handled as a whole
  (:func:`~hub.ingest.envelope.ingest_envelope`);
- :mod:`hub.ingest.signatures`: the record signatures of a push worth checking ahead on the
  signature processes (:mod:`hub.worker`);
- :mod:`hub.ingest.batch`: one node's batch verified and stored in one transaction
  (:func:`~hub.ingest.batch.ingest_batch`): chain, signatures, quarantine, alerts;
- :mod:`hub.ingest.checkpoints`: the Merkle frontier and a batch's checkpoint judged;
- :mod:`hub.ingest.schemas`: event bodies against ``schemas/events/<kind>.schema.json``;
- :mod:`hub.ingest.store`: verified records written (rotations, person links, rollups);
- :mod:`hub.ingest.results`: the hub's reason codes and a batch's answer;
- :mod:`hub.ingest.readback`: the stored records and checkpoints read back for a node's
  restore, its position, and an offline audit (:func:`~hub.ingest.readback.verify_stored`).

The rules are in ``docs/sync-protocol.md``.
"""
