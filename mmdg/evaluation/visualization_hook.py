"""Labelled pictures of test predictions through the config's visualizer (mmseg's ``SegLocalVisualizer``,
mmdet's ``DetLocalVisualizer``), one folder per domain."""
import os
import os.path as osp
from collections import defaultdict
from typing import Optional

import mmcv
from mmengine.hooks import Hook
from mmengine.visualization import LocalVisBackend

from mmdg.registry import HOOKS


@HOOKS.register_module()
class DomainVisualizationHook(Hook):
    """After each test iteration, draw ground truth beside prediction (class names on the segments, or
    labelled boxes) for the first ``max_per_domain`` images of each domain (all when None).

    mmseg's ``SegVisualizationHook`` names its pictures after the image file only, so the same scene in
    two domains (the demo's styles, ACDC's conditions) would overwrite one another; here each picture
    goes to ``out_dir/<domain>/<image stem>.png`` (``out_dir/<image stem>.png`` for a plain dataset).
    Tracking backends of the visualizer (TensorBoard, W&B) receive the same pictures; without
    ``out_dir`` they, or the local backend of the run folder, are the only destination. ``show`` opens a
    window per picture (``wait_time`` seconds, 0 = until a key).
    """
    priority = 'LOW'

    def __init__(self, out_dir: Optional[str] = None, max_per_domain: Optional[int] = None, show: bool = False,
                 wait_time: float = 0., draw_gt: bool = True, score_thr: float = 0.3):
        self.out_dir = out_dir
        self.max_per_domain = max_per_domain
        self.show = show
        self.wait_time = wait_time
        self.draw_gt = draw_gt
        self.score_thr = score_thr
        self.written = []
        self._count = defaultdict(int)

    def before_test(self, runner) -> None:
        self._count = defaultdict(int)

    @staticmethod
    def _temporary(path):
        """Where the visualizer writes a picture before it is renamed to ``path`` (a hidden temporary name)."""
        if not path:
            return None
        from mmdg.utils.atomic import TMP_PREFIX
        return osp.join(osp.dirname(path), f'{TMP_PREFIX}{os.getpid()}-{osp.basename(path)}')

    def after_test_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        visualizer = runner.visualizer
        for sample in outputs or ():
            domain = sample.metainfo.get('domain', '')
            if self.max_per_domain is not None and self._count[domain] >= self.max_per_domain:
                continue
            self._count[domain] += 1
            stem = osp.splitext(osp.basename(sample.img_path))[0]
            name = f'{domain}/{stem}' if domain else stem
            out_file = osp.join(self.out_dir, domain, f'{stem}.png') if self.out_dir else None
            extra = dict(pred_score_thr=self.score_thr) if 'gt_instances' in sample or 'pred_instances' in sample else {}
            visualizer.add_datasample(name, mmcv.imread(sample.img_path, channel_order='rgb'), data_sample=sample,
                                      draw_gt=self.draw_gt, show=self.show, wait_time=self.wait_time,
                                      out_file=self._temporary(out_file), step=batch_idx, **extra)
            if out_file:
                os.replace(self._temporary(out_file), out_file)  # renamed once whole: never half a picture
                self.written.append(out_file)
                # the visualizers write out_file instead of their backends; tracking backends get it too
                for backend in getattr(visualizer, '_vis_backends', {}).values():
                    if not isinstance(backend, LocalVisBackend):
                        backend.add_image(name, visualizer.get_image(), step=batch_idx)
