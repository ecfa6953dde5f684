"""The producer function: turns a schedule tick or a backfill range into request descriptors."""
