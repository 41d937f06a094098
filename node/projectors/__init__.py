"""One module of projectors per part of the node (see :mod:`node.projection`).

Each module holds ``PROJECTORS``: event kind -> ``fn(conn, event, ctx)``.  A projector reads
only the event, the tables earlier events made and its context; it never appends events.
"""
