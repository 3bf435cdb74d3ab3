import type { AppInput, Resolution } from '../app-input.js';
import type { TaskOutput, TaskRecord } from './task-record.js';

const DIMENSIONS: Record<Resolution, { width: number; height: number }> = {
  '720p': { width: 1280, height: 720 },
  '1080p': { width: 1920, height: 1080 },
};

/** What the app logs once it starts working, in its own words. */
export function runningLogs(input: AppInput): string[] {
  return [
    `Replacing characters, resolution: ${input.resolution}${input.turbo ? ' (turbo)' : ''}`,
    `Reference images: ${input.images.length}`,
    'Uploading source video...',
    'Status: processing, waiting... (10s)',
  ];
}

export function completionLogs(input: AppInput, output: TaskOutput | undefined): string[] {
  const seconds = output?.output_meta.outputs[0]?.seconds ?? 0;
  return [
    'Prediction completed successfully',
    `Video replaced: ${seconds.toFixed(1)}s at ${input.resolution}`,
  ];
}

/**
 * The output the app reports. `billingSkew` scales the reported seconds (a fault knob for billing
 * mismatch tests); the bill always follows what is reported, like the provider's does.
 */
export function buildOutput(
  task: TaskRecord,
  seconds: number,
  sourceFps: number | null,
  skew: number,
): TaskOutput {
  const { resolution, target_fps: targetFps } = task.input;
  const { width, height } = DIMENSIONS[resolution];
  const reported = Math.round(seconds * skew * 1000) / 1000;
  const fps = targetFps === 'original' ? sourceFps : Number(targetFps);
  return {
    video: `${task.baseUrl}/outputs/${task.id}.mp4`,
    seed: task.input.seed ?? task.fate.seed,
    output_meta: {
      outputs: [{ type: 'video', width, height, resolution, seconds: reported, fps, extra: { resolution } }],
    },
  };
}
