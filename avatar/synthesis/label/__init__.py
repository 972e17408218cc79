"""Labels on every output: a visible mark, an invisible watermark (audio and video) carrying the
generation's watermark id, and a signed provenance manifest."""
