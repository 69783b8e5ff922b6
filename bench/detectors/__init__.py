"""Face detectors: each returns boxes, scores and the five ArcFace landmarks."""
