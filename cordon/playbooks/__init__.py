"""Playbooks: SOC-owned YAML that turns an incident into responder actions. Loading and planning are pure
Python (no boto3); executing the plan is `cordon.execute`."""
