"""Sigma rules for Cordon: loaded with pySigma, evaluated natively on normalized events (no query backend)."""

from correlators.sigma.fields import FieldView
from correlators.sigma.loader import SUPPORTED_LOGSOURCES, load_rules
from correlators.sigma.rules import CorrelationRule, DetectionRule, RuleSet

__all__ = ["SUPPORTED_LOGSOURCES", "CorrelationRule", "DetectionRule", "FieldView", "RuleSet", "load_rules"]
