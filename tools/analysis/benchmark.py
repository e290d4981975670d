"""Inference speed of a trained model on its config's test images, as mmseg's benchmark tool:

    python tools/analysis/benchmark.py CONFIG CHECKPOINT [--images 50] [--warmup 5] [--repeat-times 1]
        [--device cuda:0]

One image at a time through ``test_step`` (preprocessing, forward, post-processing) after untimed warm-up
images; with ``--repeat-times N`` the whole measurement runs N times and the mean and spread are printed.
Training-step speed and memory of every method: ``tools/benchmark.py``.
"""
import argparse
import statistics

from mmdg.utils.tool_config import input_errors_as_messages, positive_int, quiet_model_logs


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--images', type=positive_int, default=50, help='timed images (default 50)')
    p.add_argument('--warmup', type=int, default=5, help='untimed images first (default 5)')
    p.add_argument('--repeat-times', type=positive_int, default=1)
    p.add_argument('--device', default='cpu')
    args = p.parse_args(argv)
    from mmdg.apis.speed import inference_speed
    quiet_model_logs()
    with input_errors_as_messages():
        runs = [inference_speed(args.config, args.checkpoint, args.images, args.warmup, args.device)
                for _ in range(args.repeat_times)]
    fps = [r['fps'] for r in runs]
    spread = f' ± {statistics.stdev(fps):.2f}' if len(fps) > 1 else ''
    print(f'Overall fps: {statistics.mean(fps):.2f}{spread} img / s ({statistics.mean(r["ms_per_image"] for r in runs):.1f} '
          f'ms per image, {runs[0]["images"]} images, device {args.device})')


if __name__ == '__main__':
    main()
