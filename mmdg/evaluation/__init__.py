"""Evaluation glue of mmdg: per-domain metrics, prediction writer, labelled pictures, result tables."""
from .multi_domain_metric import MultiDomainIoUMetric, class_scores
from .multi_domain_voc_metric import MultiDomainVOCMetric, voc_ap_per_class
from .prediction_writer import SegPredictionWriter
from .tables import domain_table, per_class_table, write_results
from .visualization_hook import DomainVisualizationHook

__all__ = ['MultiDomainIoUMetric', 'MultiDomainVOCMetric', 'SegPredictionWriter', 'DomainVisualizationHook',
           'class_scores', 'voc_ap_per_class', 'domain_table', 'per_class_table', 'write_results']
