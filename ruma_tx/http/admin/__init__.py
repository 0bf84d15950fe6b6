"""
Synapse's admin API (C{/_synapse/admin}), in the request and response
shapes Synapse documents, so the web admin UIs that speak it (synapse-admin,
Ketesa) manage ruma_tx unchanged. Every endpoint is C{admin=True}: the router
refuses non-admins and logs the acting admin.
"""
