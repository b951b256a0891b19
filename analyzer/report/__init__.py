"""Stage 5, report: a Report -> text (the reporters), JSON data and back (serialize), and the
comparison of two reports (diff)."""
