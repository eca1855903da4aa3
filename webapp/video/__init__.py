"""POST /api/video: a video file in, one JSON line per processed frame out."""
