"""Labels on every output: a visible mark, an invisible watermark (audio and video) carrying the
generation's watermark id, the AIGC implicit label in the file's metadata, and C2PA Content
Credentials (the one signed provenance record, inside the file)."""
