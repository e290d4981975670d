"""Evaluation glue of mmdg."""
from .domain_eval import domain_table, evaluate_domains, per_class_iou
from .multi_domain_metric import MultiDomainIoUMetric
from .prediction_writer import SegPredictionWriter

__all__ = ['evaluate_domains', 'per_class_iou', 'domain_table', 'MultiDomainIoUMetric', 'SegPredictionWriter']
from .multi_domain_voc_metric import (MultiDomainVOCMetric, evaluate_det_domains, map_table,  # noqa: E402,F401
                                      per_class_ap_table, voc_ap_per_class)  # (detection)
