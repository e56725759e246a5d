"""The embedded store: one DuckDB file holding events, metric documents, references and alerts."""
