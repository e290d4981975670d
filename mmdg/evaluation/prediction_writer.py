"""Predictions written as label PNGs, for benchmark servers that score a hidden test split (ACDC, Cityscapes)."""
import os
import os.path as osp
from typing import Dict, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from PIL import Image

from mmdg.datasets.label_maps import CITYSCAPES_LABEL_IDS, TRAIN_ID
from mmdg.registry import METRICS

#: train id -> Cityscapes label id (the encoding cityscapesScripts evaluates); 255 stays 255.
TRAIN_ID_TO_LABEL_ID = np.full(256, 255, np.uint8)
for _label_id, _name in CITYSCAPES_LABEL_IDS.items():
    TRAIN_ID_TO_LABEL_ID[TRAIN_ID[_name]] = _label_id


@METRICS.register_module()
class SegPredictionWriter(BaseMetric):
    """Write each prediction as ``<output_dir>/<domain>/<image name>.png`` (no domain folder for a plain
    dataset) and score nothing: the format-only evaluator of a test split without labels.

    Args:
        output_dir: where the PNGs go (``tools/test.py --out`` sets it). An existing file is never
            overwritten: a second run into the same folder is refused.
        encoding: ``'label_id'`` (Cityscapes label ids, cityscapesScripts' encoding) or
            ``'train_id'`` (the 19 train ids, as mmseg's ``IoUMetric(format_only=True)`` of the official
            configs writes them).
    """
    default_prefix = 'format'

    def __init__(self, output_dir: str = 'format_results', encoding: str = 'label_id', **kwargs):
        super().__init__(**kwargs)
        if encoding not in ('label_id', 'train_id'):
            raise ValueError(f"encoding must be 'label_id' or 'train_id', got {encoding!r}")
        self.output_dir = output_dir
        self.encoding = encoding

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            pred = sample['pred_sem_seg']['data'].squeeze(0).cpu().numpy().astype(np.uint8)
            if self.encoding == 'label_id':
                pred = TRAIN_ID_TO_LABEL_ID[pred]
            folder = osp.join(self.output_dir, sample.get('domain', ''))
            os.makedirs(folder, exist_ok=True)
            path = osp.join(folder, osp.splitext(osp.basename(sample['img_path']))[0] + '.png')
            if osp.exists(path):
                raise FileExistsError(f'{path} exists already: write the predictions into an empty folder (--out)')
            Image.fromarray(pred).save(path)
            self.results.append(sample.get('domain', ''))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        counts = {d: results.count(d) for d in dict.fromkeys(results)}
        print_log(f'wrote {len(results)} prediction PNGs ({self.encoding}) under {self.output_dir}: '
                  + ', '.join(f'{d or "."}: {n}' for d, n in counts.items()), logger=MMLogger.get_current_instance())
        return {}
