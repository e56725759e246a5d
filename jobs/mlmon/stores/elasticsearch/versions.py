"""The Elastic stack versions mlmon targets, pinned here and in docker-compose.yml (a test keeps them equal)."""

#: Elasticsearch, Logstash and Kibana are released together; one version for all three.
STACK_VERSION = "9.4.4"
SUPPORTED_MAJOR = 9
