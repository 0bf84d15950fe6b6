"""
The ports of the use cases: the records they exchange with storage, and
the small protocols storage implements. Storage imports only these from
the services layer; services never import storage.
"""
