"""The sync engine: store (staging, audit trail, id map), watermarks, ordering, load and replay."""
