"""Stage 3, count: every node of the view -> LayerTally records (parameters, MACs, weight
references), accounted into layers and totals, with exporter notes."""
