"""Responders: the adapters that change AWS when a playbook says so (the playbooks-and-responders issue)."""
