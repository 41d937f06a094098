"""The center node: kiosk, queue, windows, display board, cases and the signed event log."""
