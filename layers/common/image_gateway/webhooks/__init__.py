"""Webhooks: the signed deliveries to callers' ``callback_url`` (ports, models, signing, the
delivery flow and its transport) and the settings of the function that receives providers'
callbacks. Kept import-free: the callback function's cold start loads only ``settings``."""
