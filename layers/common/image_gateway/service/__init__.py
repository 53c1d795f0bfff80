"""Domain services, one module per flow: routing, staging, handoff, submit, refresh, poll,
sweep, dispatch, upload_edit (and lifecycle, the status changes). No Lambda events, no boto3.
"""
