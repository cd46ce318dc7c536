"""The recordings domain: service, storage, notifier, wire schemas, audio, transcoding, upkeep."""
