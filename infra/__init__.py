"""Deployment and demo infrastructure: the small ML account the demo and end-to-end tests build in moto."""
