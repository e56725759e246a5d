"""The Elasticsearch store: statistics from aggregations, documents through the official client."""
