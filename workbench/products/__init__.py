"""Product carbon footprints, labels and export carbon data (issue 14, points 5 and 6; seed §9.4 b)."""
