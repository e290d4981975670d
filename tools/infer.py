"""Predict images with an mmdg config and checkpoint (full, adapter-only or merged):

    python tools/infer.py CONFIG CHECKPOINT IMAGE_OR_DIR --out DIR [--device cuda:0] [--batch-size 4]

For each image (a folder is searched recursively; its sub-folders are kept under ``--out``):
``DIR/vis/<name>.png``, the prediction drawn on the image with class names through the config's
visualizer, and ``DIR/pred/<name>.png``, the raw label map: one channel, the model's class ids (the 19
train ids; ``--label-encoding label_id``: Cityscapes label ids), the same default as ``tools/test.py --out``;
``DIR/pred/label_encoding.json`` says which. Detection configs write ``DIR/pred/<name>.json`` (boxes x1 y1
x2 y2, scores, class names) instead.
"""
import argparse
import errno
import json
import os
import os.path as osp
import warnings

from mmengine.config import DictAction

from mmdg.utils.atomic import atomic_open
from mmdg.utils.tool_config import input_errors_as_messages, positive_int

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('input', help='an image or a folder of images')
    p.add_argument('--out', required=True, help='output folder (vis/ and pred/)')
    p.add_argument('--device', default='cpu')
    p.add_argument('--batch-size', type=positive_int, default=1)
    p.add_argument('--opacity', type=float, default=0.5, help='of the drawn segments (0-1)')
    p.add_argument('--score-thr', type=float, default=0.3, help='detection: boxes drawn above this score')
    p.add_argument('--label-encoding', choices=['train_id', 'label_id'], default='train_id',
                   help='pixel values of the label PNGs: the 19 train ids (default) or Cityscapes label ids')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, help='key=value pairs merged into the config')
    return p.parse_args(argv)



def list_images(path: str):
    """``[(image path, name relative to the input)]``; a folder is searched recursively."""
    if osp.isfile(path):
        return [(path, osp.basename(path))]
    if not osp.isdir(path):
        raise FileNotFoundError(errno.ENOENT, 'no such image or folder', path)  # filename set: a one-line input error
    found = []
    for folder, _, files in os.walk(path):
        for f in sorted(files):
            if f.lower().endswith(IMAGE_EXTENSIONS):
                full = osp.join(folder, f)
                found.append((full, osp.relpath(full, path)))
    if not found:
        raise FileNotFoundError(f'{path}: no image ({", ".join(IMAGE_EXTENSIONS)}) in this folder')
    by_stem = {}
    for full, rel in sorted(found):  # a.jpg and a.png would write the same pred/a.png and vis/a.png
        other = by_stem.setdefault(osp.splitext(rel)[0], rel)
        if other != rel:
            raise ValueError(f'{osp.join(path, other)} and {full} would write the same output files '
                             f'({osp.splitext(rel)[0]}.png): rename one, or predict them separately')
    return sorted(found)


def write_prediction(result, classes, path_stem: str, encoding: str = 'train_id') -> str:
    """The raw prediction: a label PNG (segmentation) or a JSON of boxes (detection)."""
    os.makedirs(osp.dirname(path_stem), exist_ok=True)
    if 'pred_sem_seg' in result:
        from mmdg.evaluation.prediction_writer import encode_prediction
        from mmdg.utils.atomic import save_image
        save_image(path_stem + '.png', encode_prediction(result.pred_sem_seg.data[0].cpu().numpy(), encoding))
        return path_stem + '.png'
    inst = result.pred_instances
    boxes = dict(bboxes=inst.bboxes.cpu().tolist(), scores=inst.scores.cpu().tolist(),
                 labels=[classes[i] for i in inst.labels.cpu().tolist()])
    with atomic_open(path_stem + '.json', 'w') as f:
        json.dump(boxes, f)
    return path_stem + '.json'


def main(argv=None):
    args = parse_args(argv)
    from mmdg.utils.checkpoint import checkpoint_exists  # a file, or a sharded checkpoint's folder
    for path, exists in ((args.config, osp.isfile), (args.checkpoint, checkpoint_exists)):
        if not exists(path):
            raise SystemExit(f'{path} does not exist')
    with input_errors_as_messages():
        return infer(args)


def infer(args):
    from tqdm import tqdm
    from mmdg.apis.inference import build_visualizer, draw_result, inference_model, init_model

    images = list_images(args.input)
    with warnings.catch_warnings():  # the libraries' deprecation notices while the model is built
        warnings.simplefilter('ignore', UserWarning)
        model = init_model(args.config, args.checkpoint, device=args.device, cfg_options=args.cfg_options)
    visualizer = build_visualizer(model, args.opacity)
    classes = model.dataset_meta['classes']
    written = []
    bar = tqdm(total=len(images), unit='img', desc='infer', disable=len(images) == 1)
    for start in range(0, len(images), args.batch_size):
        chunk = images[start:start + args.batch_size]
        results = inference_model(model, [p for p, _ in chunk], batch_size=args.batch_size)
        for (path, rel), result in zip(chunk, results):
            stem = osp.splitext(rel)[0]
            vis = osp.join(args.out, 'vis', stem + '.png')
            os.makedirs(osp.dirname(vis), exist_ok=True)
            draw_result(model, path, result, out_file=vis, score_thr=args.score_thr, visualizer=visualizer)
            written.append((vis, write_prediction(result, classes, osp.join(args.out, 'pred', stem),
                                                  args.label_encoding)))
        bar.update(len(chunk))
    bar.close()
    where = f'predictions in {osp.join(args.out, "pred")}'
    if written and written[0][1].endswith('.png'):
        from mmdg.evaluation.prediction_writer import ENCODINGS, write_encoding_note
        write_encoding_note(osp.join(args.out, 'pred'), args.label_encoding, classes)
        where += f' ({args.label_encoding}: {ENCODINGS[args.label_encoding]}; label_encoding.json beside them)'
    print(f'{len(written)} image(s): labelled pictures in {osp.join(args.out, "vis")}, {where}')
    return written


if __name__ == '__main__':
    main()
