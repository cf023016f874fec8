"""The dataset API: data products served read-only over the open Delta Sharing protocol."""
