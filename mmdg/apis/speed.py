"""Inference speed of a trained model on its config's test images (``tools/analysis/benchmark.py``, as mmseg's
``tools/analysis_tools/benchmark.py``): one image at a time through the model's ``test_step`` (data
preprocessing, forward, post-processing), after warm-up images that are not timed."""
import copy
import time

import torch


def inference_speed(config: str, checkpoint: str, images: int = 50, warmup: int = 5, device: str = 'cpu',
                    log=print) -> dict:
    """Images per second and milliseconds per image over ``images`` test images (the first domain of a
    multi-domain test set), after ``warmup`` untimed ones."""
    from mmengine.runner import Runner

    from mmdg.apis.inference import first_dataset, init_model
    model = init_model(config, checkpoint, device=device)
    cfg = model.cfg
    loader_cfg = copy.deepcopy(cfg.get('test_dataloader') or cfg.val_dataloader).to_dict()  # plain: update replaces
    loader_cfg.update(batch_size=1, num_workers=0, persistent_workers=False,
                      dataset=first_dataset(loader_cfg['dataset']))
    loader = Runner.build_dataloader(loader_cfg)
    timed, seconds = 0, 0.0
    with torch.no_grad():
        for i, data in enumerate(loader):
            if i >= warmup + images:
                break
            if device.startswith('cuda'):
                torch.cuda.synchronize()
            t = time.perf_counter()
            model.test_step(data)
            if device.startswith('cuda'):
                torch.cuda.synchronize()
            if i >= warmup:
                timed += 1
                seconds += time.perf_counter() - t
                log(f'Done image [{timed}/{images}], fps: {timed / seconds:.2f} img / s')
    if not timed:
        raise ValueError(f'the test set has {len(loader)} image(s): fewer than the {warmup} warm-up ones; '
                         'pass --warmup 0 or a larger test set')
    return dict(images=timed, fps=timed / seconds, ms_per_image=1000 * seconds / timed)
