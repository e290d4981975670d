"""Evaluation glue of mmdg."""
from .domain_eval import domain_table, evaluate_domains, per_class_iou

__all__ = ['evaluate_domains', 'per_class_iou', 'domain_table']
