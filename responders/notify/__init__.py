"""Notification responders: tell people and systems about an incident (SNS, Slack, Security Hub).

They act on the incident itself (target type `incident`), change nothing in the account they report on and so
cannot be rolled back. Messages are built by pure functions (`summary`, `build_publish`, `build_message`,
`build_finding`) and sent by thin responders. Importing this package registers them.
"""

from responders.notify import securityhub, slack, sns

__all__ = ["securityhub", "slack", "sns"]
