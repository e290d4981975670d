"""Predictions written as label PNGs, for benchmark servers that score a hidden test split (ACDC, Cityscapes)."""
import os
import os.path as osp
from typing import Dict, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log

from mmdg.datasets.label_maps import CITYSCAPES_LABEL_IDS, TRAIN_ID
from mmdg.registry import METRICS
from mmdg.utils.atomic import save_image

#: train id -> Cityscapes label id (the encoding cityscapesScripts evaluates); 255 stays 255.
TRAIN_ID_TO_LABEL_ID = np.full(256, 255, np.uint8)
for _label_id, _name in CITYSCAPES_LABEL_IDS.items():
    TRAIN_ID_TO_LABEL_ID[TRAIN_ID[_name]] = _label_id


#: What each encoding of a written prediction PNG means (also in the ``label_encoding.json`` beside them).
ENCODINGS = {
    'train_id': 'pixel value = the 19 Cityscapes train ids (0 road ... 18 bicycle), the model\'s class index',
    'label_id': 'pixel value = Cityscapes label ids (7 road ... 33 bicycle), what cityscapesScripts evaluates',
}


def encode_prediction(pred: np.ndarray, encoding: str) -> np.ndarray:
    """A train-id label map in ``encoding`` (:data:`ENCODINGS`)."""
    if encoding not in ENCODINGS:
        raise ValueError(f'label encoding must be one of {sorted(ENCODINGS)}, got {encoding!r}')
    pred = pred.astype(np.uint8)
    return TRAIN_ID_TO_LABEL_ID[pred] if encoding == 'label_id' else pred


def write_encoding_note(folder: str, encoding: str, classes: Sequence[str]) -> str:
    """``<folder>/label_encoding.json``: the encoding and the class of every pixel value, so that a folder of
    prediction PNGs says how to read it."""
    import json

    from mmdg.utils.atomic import atomic_open
    os.makedirs(folder, exist_ok=True)
    values = {int(encode_prediction(np.array([i]), encoding)[0]): name for i, name in enumerate(classes)}
    path = osp.join(folder, 'label_encoding.json')
    with atomic_open(path) as f:
        json.dump(dict(encoding=encoding, meaning=ENCODINGS[encoding], values=values), f, indent=1)
    return path


@METRICS.register_module()
class SegPredictionWriter(BaseMetric):
    """Write each prediction as ``<output_dir>/<domain>/<image name>.png`` (no domain folder for a plain
    dataset) and score nothing: the format-only evaluator of a test split without labels.

    Args:
        output_dir: where the PNGs go (``tools/test.py --out`` sets it). An existing file is never
            overwritten: a second run into the same folder is refused.
        encoding: ``'train_id'`` (the default, as ``tools/infer.py``: the 19 train ids, as mmseg's
            ``IoUMetric(format_only=True)`` of the official configs writes them) or ``'label_id'`` (Cityscapes
            label ids, cityscapesScripts' encoding). ``label_encoding.json`` beside the PNGs says which.
    """
    default_prefix = 'format'

    def __init__(self, output_dir: str = 'format_results', encoding: str = 'train_id', **kwargs):
        super().__init__(**kwargs)
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be 'label_id' or 'train_id', got {encoding!r}")
        self.output_dir = output_dir
        self.encoding = encoding

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            pred = encode_prediction(sample['pred_sem_seg']['data'].squeeze(0).cpu().numpy(), self.encoding)
            folder = osp.join(self.output_dir, sample.get('domain', ''))
            os.makedirs(folder, exist_ok=True)
            path = osp.join(folder, osp.splitext(osp.basename(sample['img_path']))[0] + '.png')
            if osp.exists(path):
                raise FileExistsError(f'{path} exists already: write the predictions into an empty folder (--out)')
            save_image(path, pred)  # atomically
            self.results.append(sample.get('domain', ''))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        counts = {d: results.count(d) for d in dict.fromkeys(results)}
        write_encoding_note(self.output_dir, self.encoding, (self.dataset_meta or {}).get('classes') or list(TRAIN_ID))
        print_log(f'wrote {len(results)} prediction PNGs ({self.encoding}) under {self.output_dir}: '
                  + ', '.join(f'{d or "."}: {n}' for d, n in counts.items()), logger=MMLogger.get_current_instance())
        return {}
