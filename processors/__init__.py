"""Stream processors (faust): validation, HQ live feed, review gating, classification filtering."""
