"""Enterprise carbon-efficiency grades (issue 14, point 4; seed §9.4 a): 碳效码 and other schemes."""
