"""The shared vocabulary every stage imports: errors, dtypes, proto walks, symbolic dims, the
result records (Report and its parts), and the process sandbox. Imports nothing above it."""
