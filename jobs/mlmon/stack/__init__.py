"""``mlmon setup``: the Elasticsearch / Kibana assets and their idempotent installation.

- :mod:`.assets` generates ``elasticsearch/`` (templates, ILM, roles) from the event
  contract and the stored-document schemas;
- :mod:`.installer` installs them through the official client, comparing with
  what is installed first;
- :mod:`.kibana` imports saved objects and rules through Kibana's HTTP APIs.
"""
