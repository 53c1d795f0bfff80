"""Local development stack: moto, the provider simulator and a local API router."""
